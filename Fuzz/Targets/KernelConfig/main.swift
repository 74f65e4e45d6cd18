// The kernel-config reader: CONFIG_HZ from a /boot/config-<release> file, then HZ where the
// reader uses it (turning /proc's persistence timeouts from jiffies into seconds).
import IPVSReader

/// A persistent service of each family and an fwmark one, as /proc/net/ip_vs prints them.
let services = """
    IP Virtual Server version 1.2.1 (size=4096)
    Prot LocalAddress:Port Scheduler Flags
      -> RemoteAddress:Port Forward Weight ActiveConn InActConn
    TCP  0A000064:01BB wlc persistent 75000 FFFFFF00
      -> C0A80102:01BB      Masq    1      0          0
    TCP  [fd00:0001:0000:0000:0000:0000:0000:0001]:0050 rr persistent 4294967295 40000000
    FWM  00000001 rr persistent 1 FFFFFFFF

    """

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = KernelConfigParser.raw(text)
    guard let hz = KernelConfigParser.hz(text) else { return 0 }
    precondition(KernelConfigParser.plausible.contains(hz), "CONFIG_HZ \(hz) accepted")
    let table = ServiceTableParser.parse(services, hz: hz)
    for s in table.services {
        if let p = s.persistence, let secs = p.timeoutSeconds, let j = p.timeoutJiffies {
            precondition(UInt64(secs) <= UInt64(j), "\(j) jiffies at HZ \(hz) made \(secs) s")
        }
    }
    return 0
}
