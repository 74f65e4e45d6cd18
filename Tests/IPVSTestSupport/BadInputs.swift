import Foundation

/// The inputs of `../shared/bad-inputs` (issue 25) that once crashed, hung or misled the
/// reader, kept in Tests/Fixtures/bad-inputs: each `proc/NAME` folder holds only the files
/// that differ from the real-kernel capture `proc-vm-6.1`, laid over a copy of it here.
public enum BadInputs {
    public static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
    public static let base = fixtures + "/proc-vm-6.1"

    /// A copy of the capture with `bad-inputs/proc/NAME` laid over it; removed by the
    /// returned closure.
    public static func tree(_ name: String?) throws -> (root: String, remove: () -> Void) {
        let root = NSTemporaryDirectory() + "ipvstop-bad-" + UUID().uuidString
        let fm = FileManager.default
        try fm.copyItem(atPath: base, toPath: root)
        if let name {
            let overlay = fixtures + "/bad-inputs/proc/" + name
            guard let list = fm.enumerator(atPath: overlay) else { throw CocoaError(.fileNoSuchFile) }
            let files = list.compactMap { $0 as? String }
            var copied = 0
            for rel in files {
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: overlay + "/" + rel, isDirectory: &isDir), !isDir.boolValue else { continue }
                try? fm.removeItem(atPath: root + "/" + rel)
                try fm.copyItem(atPath: overlay + "/" + rel, toPath: root + "/" + rel)
                copied += 1
            }
            if copied == 0 { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: overlay]) }
        }
        return (root, { try? fm.removeItem(atPath: root) })
    }
}
