#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// write(2) of a whole buffer, for what Foundation's `FileHandle.write` did: again after a
/// signal (EINTR) and after a short write.
public enum FileDescriptorWrite {
    /// Writes all of `bytes` to `fd`: nil when they are out, otherwise the errno that stopped it.
    public static func all(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return n < 0 ? errno : EIO }
            done += n
        }
        return nil
    }
}
