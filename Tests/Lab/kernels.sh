# Sourced by the lab's scripts: the kernel matrix (names, and where Tests/Lab/setup puts them).
#   6.1   Debian bookworm's kernel (this machine's /boot)
#   6.12  Debian trixie's
#   7     Debian trixie-backports' 7.x
# LAB_KERNELS="6.1 6.12 7" (a subset, in any order) picks which ones the lab runs.
LAB_ALL_KERNELS="6.1 6.12 7"
