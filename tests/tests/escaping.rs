//! Service names with control bytes (a newline, an escape sequence) are
//! shown as `\xHH` in braid's `dinitctl list`/`status`, `sv status` and
//! braid's own `status`, `why` and `graph`, so a name cannot forge a line
//! or drive the terminal; ordinary names print as the real programs print
//! them.

use braid_tests::*;

/// ESC starts a terminal escape sequence; the rest is plain.
const ESC_NAME: &str = "evil\x1b[2Jname";
const ESC_SHOWN: &str = "evil\\x1b[2Jname";

#[test]
fn dinitctl_list_and_status_escape_control_bytes_in_names() {
    let svc = "type = process\ncommand = /bin/sleep 1000\n";
    let Some(s) = DinitSession::start("esc-dinit", &[(ESC_NAME, svc), ("plain", svc)]) else {
        return;
    };
    let mut guard = SessionGuard::default();
    for name in [ESC_NAME, "plain"] {
        let (text, code) = s.ctl_text(&["start", name]);
        assert_eq!(code, 0, "start {name:?}: {text}");
        guard.0.push(s.pid_of(name).expect("pid"));
    }
    let (list, code) = s.ctl_text(&["list"]);
    assert_eq!(code, 0, "{list}");
    let pid_esc = s.pid_of(ESC_NAME).expect("pid");
    let pid_plain = s.pid_of("plain").expect("pid");
    assert!(
        list.contains(&format!("[[+]     ] {ESC_SHOWN} (pid: {pid_esc})\n")),
        "{list:?}"
    );
    assert!(
        list.contains(&format!("[[+]     ] plain (pid: {pid_plain})\n")),
        "{list:?}"
    );
    assert!(!list.contains('\x1b'), "{list:?}");

    let sd = s.dir.join("sd");
    let (status, code) = s.ctl_text(&["status", ESC_NAME]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(
        status,
        format!(
            "Service: {ESC_SHOWN}\n    File: {}/{ESC_SHOWN}\n    State: STARTED\n    \
             Activation: explicitly started\n    Process ID: {pid_esc}\n",
            sd.display()
        )
    );
    let (status, _) = s.ctl_text(&["status", "plain"]);
    assert_eq!(
        status,
        format!(
            "Service: plain\n    File: {}/plain\n    State: STARTED\n    \
             Activation: explicitly started\n    Process ID: {pid_plain}\n",
            sd.display()
        )
    );
}

#[test]
fn sv_status_escapes_control_bytes_in_names() {
    let run = "#!/bin/sh\nexec sleep 1000\n";
    let Some(s) = RunitSession::start(
        "esc-runit",
        &[(ESC_NAME, run), ("new\nline", run), ("plain", run)],
    ) else {
        return;
    };
    let mut guard = SessionGuard::default();
    for (name, shown) in [
        (ESC_NAME, ESC_SHOWN),
        ("new\nline", "new\\x0aline"),
        ("plain", "plain"),
    ] {
        let text = s.wait_status(name, "run: ");
        let pid = s.pid_of(name).expect("pid");
        guard.0.push(pid);
        let head = format!("run: {shown}: (pid {pid}) ");
        assert!(text.starts_with(&head), "{text:?} should start {head:?}");
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(!text.contains('\x1b'), "{text:?}");
    }
    // The `ok:`/`fail:` lines escape too.
    let (text, code) = s.sv(&["status", "gone\x07"]);
    assert_eq!(
        (text.as_str(), code),
        (
            "fail: gone\\x07: unable to change to service directory: file does not exist\n",
            1
        )
    );
}

#[test]
fn braid_status_why_and_graph_escape_control_bytes_in_names() {
    let run = "#!/bin/sh\nexec sleep 1000\n";
    let Some(s) = RunitSession::start("esc-inspect", &[(ESC_NAME, run), ("web", run)]) else {
        return;
    };
    write_file(
        &s.dir.join("service/web/dependencies"),
        &format!("{ESC_NAME}\n"),
        0o644,
    );
    let mut guard = SessionGuard::default();
    s.wait_status(ESC_NAME, "run: ");
    let pid = s.pid_of(ESC_NAME).expect("pid");
    guard.0.push(pid);
    let tree = s.dir.join("service");
    let braid = |args: &[&str]| {
        let o = run_client(
            std::process::Command::new(&s.braid)
                .args(args)
                .arg("-d")
                .arg(&tree),
        );
        assert!(o.status.success(), "braid {args:?}: {o:?}");
        String::from_utf8(o.stdout).expect("UTF-8")
    };

    let status = braid(&["status"]);
    assert!(
        status.lines().any(|l| l
            .strip_prefix(ESC_SHOWN)
            .is_some_and(|rest| rest.trim_start().starts_with("runit "))),
        "{status:?}"
    );
    let why = braid(&["why", ESC_NAME]);
    assert!(
        why.starts_with(&format!("{ESC_SHOWN} is started, pid {pid}")),
        "{why:?}"
    );
    let graph = braid(&["graph"]);
    assert!(graph.contains(&format!("-> {ESC_SHOWN} (")), "{graph:?}");
    for text in [&status, &why, &graph] {
        assert!(!text.contains('\x1b'), "{text:?}");
    }
}
