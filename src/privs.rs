//! Dropping root: `global.user` / `global.group`. focld binds its listening sockets and its
//! control socket as root, hands the files it will keep writing to the user, then switches
//! the whole process (every thread: glibc and the BSD libcs apply set*id process-wide) to the
//! user and group, so it never talks BGP as root.

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;

/// The user and group to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Look up `user` (and `group`, default: the user's primary group). `Ok(None)` when no user is
/// configured. Errors say what to fix.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Target>, String> {
    let Some(user) = user else {
        if let Some(g) = group {
            return Err(format!("global.group = \"{g}\" needs global.user as well"));
        }
        return Ok(None);
    };
    let (uid, primary) = lookup_user(user).ok_or_else(|| format!("global.user: no user '{user}' on this system"))?;
    let gid = match group {
        Some(g) => lookup_group(g).ok_or_else(|| format!("global.group: no group '{g}' on this system"))?,
        None => primary,
    };
    Ok(Some(Target { user: user.to_string(), uid, gid }))
}

fn lookup_user(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let c = CString::new(name).ok()?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into `pw` and `buf`, which outlive the call; `out` is checked.
    let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    Some((pw.pw_uid, pw.pw_gid))
}

fn lookup_group(name: &str) -> Option<libc::gid_t> {
    let c = CString::new(name).ok()?;
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r.
    let rc = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    Some(gr.gr_gid)
}

/// Whether the process runs as root (and so must drop, or may chown).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Give `path` to the target user and group (files focld keeps writing after the drop).
pub fn chown(path: &Path, t: &Target) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: a plain chown(2) on a NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), t.uid, t.gid) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("cannot chown {} to {}: {e}", path.display(), t.user)));
    }
    Ok(())
}

/// `path` and every directory below it (not the files: finished archive files stay as they
/// are, readable by all).
pub fn chown_dirs(path: &Path, t: &Target) -> io::Result<()> {
    chown(path, t)?;
    for e in std::fs::read_dir(path)?.flatten() {
        if e.file_type().is_ok_and(|ft| ft.is_dir()) {
            chown_dirs(&e.path(), t)?;
        }
    }
    Ok(())
}

/// Switch the process to the target: supplementary groups, group, then user; then make sure
/// there is no way back.
pub fn drop_to(t: &Target) -> io::Result<()> {
    let fail = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("cannot drop privileges to {} ({what}): {e}", t.user))
    };
    // SAFETY: plain system calls with valid arguments; the order (groups, gid, uid) matters
    // because only root may change groups.
    unsafe {
        #[allow(clippy::useless_conversion)]
        if libc::setgroups(1, &t.gid) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(t.gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(t.uid) != 0 {
            return Err(fail("setuid"));
        }
        if t.uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(io::Error::other(format!(
                "privileges to {} were not dropped: uid 0 is still reachable",
                t.user
            )));
        }
    }
    Ok(())
}

/// The name of a uid, for messages.
pub fn user_name(uid: libc::uid_t) -> String {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in lookup_user.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pw.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy().into_owned()
}

/// The name of group `gid`, or the number when it has none (for messages).
pub fn group_name(gid: libc::gid_t) -> String {
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in lookup_user; gr_name points into `buf`, NUL-terminated.
    let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || gr.gr_name.is_null() {
        return gid.to_string();
    }
    unsafe { CStr::from_ptr(gr.gr_name) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_and_refuses_unknown_names() {
        let t = resolve(Some("root"), None).expect("root exists").expect("a target");
        assert_eq!((t.uid, t.gid), (0, 0));
        assert_eq!(resolve(None, None), Ok(None));
        assert!(resolve(None, Some("root")).unwrap_err().contains("needs global.user"));
        assert!(resolve(Some("no-such-user-focl"), None).unwrap_err().contains("no user 'no-such-user-focl'"));
        assert!(resolve(Some("root"), Some("no-such-group-focl")).unwrap_err().contains("no group"));
        assert_eq!(user_name(0), "root");
        assert_eq!(group_name(0), "root");
    }
}
