//! runit's own texts for errno values (runit prints these, never `strerror`).
//!
//! The table follows runit's lookup order, so where two names share a value
//! on Linux (EAGAIN and EWOULDBLOCK) the first text wins, as it does in runit.

use nix::errno::Errno;

/// The text runit prints for `errno`; `unknown error` for anything unlisted.
pub fn errstr(errno: i32) -> &'static str {
    use Errno::*;
    const TABLE: &[(Errno, &str)] = &[
        (EINTR, "interrupted system call"),
        (ENOMEM, "out of memory"),
        (ENOENT, "file does not exist"),
        (ETXTBSY, "text busy"),
        (EIO, "input/output error"),
        (EEXIST, "file already exists"),
        (ETIMEDOUT, "timed out"),
        (EINPROGRESS, "operation in progress"),
        (EAGAIN, "temporary failure"),
        (EPIPE, "broken pipe"),
        (EPERM, "permission denied"),
        (EACCES, "access denied"),
        (ENXIO, "device not configured"),
        (EPROTO, "protocol error"),
        (EISDIR, "is a directory"),
        (ECONNREFUSED, "connection refused"),
        (ENOTDIR, "not a directory"),
        (ESRCH, "no such process"),
        (E2BIG, "argument list too long"),
        (ENOEXEC, "exec format error"),
        (EBADF, "file descriptor not open"),
        (ECHILD, "no child processes"),
        (EDEADLK, "operation would cause deadlock"),
        (EFAULT, "bad address"),
        (ENOTBLK, "not a block device"),
        (EBUSY, "device busy"),
        (EXDEV, "cross-device link"),
        (ENODEV, "device does not support operation"),
        (EINVAL, "invalid argument"),
        (ENFILE, "system cannot open more files"),
        (EMFILE, "process cannot open more files"),
        (ENOTTY, "not a tty"),
        (EFBIG, "file too big"),
        (ENOSPC, "out of disk space"),
        (ESPIPE, "unseekable descriptor"),
        (EROFS, "read-only file system"),
        (EMLINK, "too many links"),
        (EDOM, "input out of range"),
        (ERANGE, "output out of range"),
        (EALREADY, "operation already in progress"),
        (ENOTSOCK, "not a socket"),
        (EDESTADDRREQ, "destination address required"),
        (EMSGSIZE, "message too long"),
        (EPROTOTYPE, "incorrect protocol type"),
        (ENOPROTOOPT, "protocol not available"),
        (EPROTONOSUPPORT, "protocol not supported"),
        (ESOCKTNOSUPPORT, "socket type not supported"),
        (EOPNOTSUPP, "operation not supported"),
        (EPFNOSUPPORT, "protocol family not supported"),
        (EAFNOSUPPORT, "address family not supported"),
        (EADDRINUSE, "address already used"),
        (EADDRNOTAVAIL, "address not available"),
        (ENETDOWN, "network down"),
        (ENETUNREACH, "network unreachable"),
        (ENETRESET, "network reset"),
        (ECONNABORTED, "connection aborted"),
        (ECONNRESET, "connection reset"),
        (ENOBUFS, "out of buffer space"),
        (EISCONN, "already connected"),
        (ENOTCONN, "not connected"),
        (ESHUTDOWN, "socket shut down"),
        (ETOOMANYREFS, "too many references"),
        (ELOOP, "symbolic link loop"),
        (ENAMETOOLONG, "file name too long"),
        (EHOSTDOWN, "host down"),
        (EHOSTUNREACH, "host unreachable"),
        (ENOTEMPTY, "directory not empty"),
        (EUSERS, "too many users"),
        (EDQUOT, "disk quota exceeded"),
        (ESTALE, "stale NFS file handle"),
        (EREMOTE, "too many levels of remote in path"),
        (ENOLCK, "no locks available"),
        (ENOSYS, "system call not available"),
        (ENOSTR, "not a stream device"),
        (ETIME, "timer expired"),
        (ENOSR, "out of stream resources"),
        (ENOMSG, "no message of desired type"),
        (EBADMSG, "bad message type"),
        (EIDRM, "identifier removed"),
        (ENONET, "machine not on network"),
        (ENOLINK, "link severed"),
        (EADV, "advertise error"),
        (ESRMNT, "srmount error"),
        (ECOMM, "communication error"),
        (EMULTIHOP, "multihop attempted"),
        (EREMCHG, "remote address changed"),
    ];
    if errno == 0 {
        return "no error";
    }
    TABLE
        .iter()
        .find(|(e, _)| *e as i32 == errno)
        .map_or("unknown error", |(_, text)| text)
}

/// runit's text for an I/O error: its errno's text, or `unknown error` when
/// the error carries no errno.
pub fn io_errstr(err: &std::io::Error) -> &'static str {
    err.raw_os_error().map_or("unknown error", errstr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_texts() {
        assert_eq!(errstr(0), "no error");
        assert_eq!(errstr(Errno::ENOENT as i32), "file does not exist");
        assert_eq!(errstr(Errno::ENXIO as i32), "device not configured");
        assert_eq!(errstr(Errno::EACCES as i32), "access denied");
        assert_eq!(errstr(Errno::EPERM as i32), "permission denied");
        assert_eq!(errstr(Errno::EWOULDBLOCK as i32), "temporary failure");
        assert_eq!(errstr(Errno::ENOTDIR as i32), "not a directory");
        assert_eq!(
            errstr(Errno::EMFILE as i32),
            "process cannot open more files"
        );
        assert_eq!(errstr(Errno::EHWPOISON as i32), "unknown error");
        assert_eq!(errstr(-1), "unknown error");
    }

    #[test]
    fn io_errors() {
        let e = std::io::Error::from_raw_os_error(Errno::EISDIR as i32);
        assert_eq!(io_errstr(&e), "is a directory");
        let e = std::io::Error::other("no errno");
        assert_eq!(io_errstr(&e), "unknown error");
    }
}
