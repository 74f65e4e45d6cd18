// The netlink reply decoder: one datagram as the kernel's answer to a request, through the
// reply collector (sequence, port and length checks, NLMSG_ERROR/DONE/OVERRUN) and every
// IPVS decoder (family id, info, config, service, destination, daemon).
//
// Input: a little-endian u32 sequence number, then the datagram (the format of the files in
// shared/bad-inputs/netlink/). Our port is 4242, the IPVS family 0x21, as in the seeds; the
// controller family (0x10) is tried too, for the family-id reply.
import IPVSReader

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let seq = UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3]) << 24
    let datagram = Array(UnsafeBufferPointer(start: data + 4, count: size - 4))
    for family: UInt16 in [0x21, 0x10] {
        let notes = FuzzEntryPoints.netlinkReply(datagram, seq: seq, portID: 4242, familyType: family)
        precondition(!notes.isEmpty)
    }
    return 0
}
