# Sourced by the lab's scripts: the kernel matrix (names, and where Tests/Lab/setup puts them).
#   6.1   Debian bookworm's kernel (this machine's /boot)
#   6.12  Debian trixie's
#   7     Debian trixie-backports' 7.x
# LAB_KERNELS="6.1 6.12 7" (a subset, in any order) picks which ones the lab runs.
LAB_ALL_KERNELS="6.1 6.12 7"
LAB_KERNELS_CACHE=${LAB_CACHE:-/tmp/ipvstop-lab}/kernels

# lab_kernel_ready NAME: succeeds when Tests/Lab/setup prepared NAME; else prints why not
lab_kernel_ready() {
  local d=$LAB_KERNELS_CACHE/$1 rel
  case " $LAB_ALL_KERNELS " in *" $1 "*) ;; *) echo "unknown kernel name '$1' (the matrix: $LAB_ALL_KERNELS)"; return 1 ;; esac
  [ -s "$d/release" ] || { echo "kernel $1 is not prepared: no $d/release (run LAB_KERNELS=$1 Tests/Lab/setup as root; see its output)"; return 1; }
  rel=$(cat "$d/release")
  [ -f "$d/vmlinuz" ] || { echo "kernel $1 ($rel): $d/vmlinuz is missing"; return 1; }
  [ -f "/usr/lib/modules/$rel/modules.dep" ] || { echo "kernel $1 ($rel): its modules are not installed in /usr/lib/modules/$rel"; return 1; }
}
