//! focl as an operator's shell sees it: a closed pipe ends it quietly, its exit statuses say
//! what went wrong (0 ok, 1 error reply, 2 not reachable, 64 usage), a socket it may not use
//! is named as such, commands abbreviate, `-j` may follow the command, and the completion
//! scripts work in bash (and parse in zsh).

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

fn config(dir: &std::path::Path, name: &str) -> String {
    format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten = false\ncontrol_socket = \"{}/{name}.sock\"\n\n\
         [[peers]]\nname = \"upstream\"\naddress = \"127.0.0.151\"\nremote_as = 65002\npassive = true\n",
        dir.display()
    )
}

fn focl(socket: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(focl_bin()).arg("-s").arg(socket).args(args).output().expect("run focl")
}

#[test]
fn a_closed_output_pipe_ends_focl_quietly_and_successfully() {
    let dir = TempDir::new("cli-pipe");
    let f = Focld::start(dir.path(), "p", &config(dir.path(), "p"));
    for _ in 0..20 {
        let mut child = Command::new(focl_bin())
            .arg("-s")
            .arg(&f.socket)
            .args(["-j", "peer", "show", "upstream"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn focl");
        // The reader goes away before focl writes (as `| grep -q` does once it has matched).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait focl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "status {:?}, stderr: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn exit_statuses_tell_usage_errors_from_unreachable_and_error_replies() {
    let dir = TempDir::new("cli-exit");
    let f = Focld::start(dir.path(), "e", &config(dir.path(), "e"));
    // 0: an answer.
    assert_eq!(focl(&f.socket, &["status"]).status.code(), Some(0));
    // 1: focld answered with an error.
    let out = focl(&f.socket, &["peer", "show", "no-such-peer"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no neighbor 'no-such-peer'"));
    // 2: nobody listens on the socket.
    let out = focl(&dir.path().join("nothing.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("focl: focld is not running"));
    // 64: the command line is wrong; the message says what to do.
    for bad in [&["frobnicate"][..], &["peer"], &["r"], &[]] {
        let out = focl(&f.socket, bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{bad:?}: {stderr}");
        assert!(stderr.contains("focl --help"), "{bad:?}: {stderr}");
    }
    let out = focl(&f.socket, &["r"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ambiguous: rib, reload, rpki"));
    // --help is not an error.
    assert_eq!(focl(&f.socket, &["--help"]).status.code(), Some(0));
}

#[test]
fn version_abbreviations_and_a_trailing_json_flag_work_against_a_daemon() {
    let dir = TempDir::new("cli-abbrev");
    let f = Focld::start(dir.path(), "a", &config(dir.path(), "a"));
    let out = focl(&f.socket, &["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("focl {}\n", env!("CARGO_PKG_VERSION")));
    let out = focl(&f.socket, &["-V"]);
    assert!(out.status.success());
    // `focl p l` is `focl peer list`; `-j` after the command gives the same JSON.
    let text = focl(&f.socket, &["p", "l"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("127.0.0.151"), "{text:?}");
    let trailing = focl(&f.socket, &["pe", "sh", "upstream", "-j"]);
    let v: serde_json::Value = serde_json::from_slice(&trailing.stdout).expect("JSON after a trailing -j");
    assert_eq!(v["address"], "127.0.0.151");
    assert_eq!(v["name"], "upstream");
}

#[test]
fn a_control_socket_focl_may_not_use_is_named_as_such_not_as_focld_down() {
    if !focl::privs::is_root() {
        eprintln!("needs root to run focl as another user; the test command runs as root");
        return;
    }
    let dir = TempDir::new("cli-perm");
    let f = Focld::start(dir.path(), "m", &config(dir.path(), "m"));
    // The socket is root's, mode 0660: user nobody may not connect.
    let out = Command::new(focl_bin())
        .arg("-s")
        .arg(&f.socket)
        .arg("status")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run focl as nobody");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("mode 0660") && stderr.contains("group root"), "{stderr}");
    assert!(!stderr.contains("not running"), "{stderr}");
}

#[test]
fn bash_completion_completes_commands_and_subcommands() {
    let complete = |words: &str, cword: usize| {
        let script = format!(
            "source <({} completion bash); COMP_WORDS=({words}); COMP_CWORD={cword}; _focl; echo \"${{COMPREPLY[*]}}\"",
            focl_bin()
        );
        let out = Command::new("bash").arg("-c").arg(&script).output().expect("run bash");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete("focl pe", 1), "peer");
    assert_eq!(complete("focl r", 1), "rib reload rpki");
    assert_eq!(complete("focl peer re", 2), "reset refresh");
    assert_eq!(complete("focl -s /x.sock archive ''", 4), "status rotate snapshot retry");
    assert_eq!(complete("focl peer refresh upstream ''", 4), "ipv4 ipv6");
    assert_eq!(complete("focl completion ''", 2), "bash zsh");
}

#[test]
fn the_zsh_completion_script_parses() {
    let Ok(zsh) = which("zsh") else {
        panic!("zsh is needed (scripts/install-test-deps installs it)");
    };
    let script = Command::new(focl_bin()).args(["completion", "zsh"]).output().expect("focl completion zsh");
    assert!(script.status.success());
    let path = TempDir::new("cli-zsh");
    let file = path.path().join("_focl");
    std::fs::write(&file, &script.stdout).expect("write script");
    let out = Command::new(zsh).arg("-n").arg(&file).output().expect("zsh -n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn which(cmd: &str) -> Result<String, ()> {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().map_err(|_| ())?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if p.is_empty() {
        Err(())
    } else {
        Ok(p)
    }
}
