#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A thread of its own for a long-running loop (the pollers, the feed, the analysis), on
/// POSIX threads directly: Foundation's `Thread` would bring the whole of Foundation into
/// the binary. Detached: nothing joins it; it ends when `body` returns.
public enum DetachedThread {
    /// Starts `body` on a new thread named `name` (as `top -H` and /proc/PID/task show it;
    /// cut to the kernel's 15 bytes). A thread that cannot be created is a fatal error, as
    /// it was with Foundation's `Thread`: the process has run out of threads or memory.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, detachedThreadEntry, box)
        if rc != 0 {
            Unmanaged<Start>.fromOpaque(box).release()
            fatalError("cannot start thread \(name): \(String(cString: strerror(rc)))")
        }
    }

    /// The calling thread's name, through /proc (pthread_setname_np is a GNU extension
    /// Swift's Glibc module does not show); nothing when /proc is not there.
    fileprivate static func setName(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    fileprivate final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Sleeps the calling thread `seconds` (nothing when not positive), as `Thread.sleep`.
    public static func sleep(seconds: Double) {
        guard seconds > 0, seconds.isFinite else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}

/// The new thread's first function: takes the `Start` that `start` retained for it.
private func detachedThreadEntry(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<DetachedThread.Start>.fromOpaque(arg!).takeRetainedValue()
    DetachedThread.setName(start.name)
    start.body()
    return nil
}

/// A mutex and a condition variable (POSIX), for a thread that waits to be woken or for a
/// time, whichever comes first: what Foundation's `NSCondition` gave the feed. Timed waits
/// use the monotonic clock, so setting the wall clock neither stalls nor hurries them.
public final class WakeCondition: @unchecked Sendable {
    // Allocated once and never moved: pthread objects must keep their address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        mutex.initialize(to: pthread_mutex_t())
        cond.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    /// Wakes one waiter (call with the lock held).
    public func signal() { pthread_cond_signal(cond) }
    /// Wakes every waiter (call with the lock held).
    public func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (with the lock held) until woken or `seconds` have passed; false on the timeout.
    @discardableResult
    public func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let s = seconds.isFinite ? min(max(0, seconds), 1e9) : 1e9
        var deadline = timespec(tv_sec: now.tv_sec + Int(s), tv_nsec: now.tv_nsec + Int((s - s.rounded(.down)) * 1e9))
        if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
        return pthread_cond_timedwait(cond, mutex, &deadline) == 0
    }
}
