//! The loader the daemon uses: finding files across service directories,
//! reading every setting, stopping at the first error with dinit's words,
//! and the translation into `ServiceSpec`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use braid_core::spec::{DepKind, Kind, LimitValue, Output, Readiness, RestartMode};
use braid_dinit::description::{
    Context, DepType, Environment, LoadError, Loader, LogType, Problem, ServiceType,
};
use nix::sys::signal::Signal;

/// A scratch directory of service directories, removed on drop.
struct Dirs(PathBuf);

impl Dirs {
    fn new() -> Dirs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "braid-desc-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Dirs(p)
    }

    fn file(&self, path: &str, text: &str) -> &Self {
        let p = self.0.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    fn path(&self, p: &str) -> String {
        self.0.join(p).to_string_lossy().into_owned()
    }

    fn loader(&self, dirs: &[&str]) -> Loader {
        let original = [("HOME", "/home/u"), ("GREETING", "hello world")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Loader::new(
            dirs.iter().map(|d| self.path(d)).collect(),
            Context {
                env: Environment::default(),
                original,
                full_name_in_env: false,
            },
        )
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn error_text(e: &LoadError) -> String {
    e.to_string()
}

#[test]
fn first_directory_with_the_file_wins_and_argument_is_stripped() {
    let d = Dirs::new();
    d.file("one/web", "type = process\ncommand = /bin/web one $1\n")
        .file("two/web", "type = process\ncommand = /bin/web two\n")
        .file("two/db", "type = internal\n");
    let l = d.loader(&["missing", "one", "two"]);
    let web = l.load("web@8080").unwrap();
    assert_eq!(web.description.command, ["/bin/web", "one", "8080"]);
    assert_eq!(web.path, PathBuf::from(format!("{}/web", d.path("one"))));
    assert!(web.mtime.is_some());
    assert_eq!(web.spec.name, "web@8080");
    assert_eq!(web.spec.working_dir, Some(PathBuf::from(d.path("one"))));
    assert_eq!(l.load("db").unwrap().description.service_dir, d.path("two"));
    let err = l.load("nope").unwrap_err();
    assert_eq!(error_text(&err), "service description not found.");
}

#[test]
fn process_service_maps_onto_the_spec() {
    let d = Dirs::new();
    d.file(
        "sd/web",
        concat!(
            "type = process\n",
            "command = /bin/web --greet \"$GREETING\" $/GREETING\n",
            "command += --more\n",
            "stop-command = /bin/web-stop\n",
            "working-dir = /srv\n",
            "run-as = 0\n",
            "restart = on-failure\nrestart-delay = 1.5\nrestart-limit-count = 7\n",
            "restart-limit-interval = 30\nsmooth-recovery = yes\n",
            "start-timeout = 0\nstop-timeout = 4\nterm-signal = INT\n",
            "depends-on: db\ndepends-ms: net\nwaits-for: cache\nprepared-by: setup\n",
            "before: login\nafter: early\nchain-to: next\n",
            "ready-notification = pipefd:3\n",
            "log-type = file\nlogfile = web.log\nlogfile-permissions = 0640\n",
            "rlimit-nofile = 100:-\nrlimit-core = 0\nnice = -30\n",
            "options = signal-process-only always-chain skippable\n",
            "socket-listen = /run/web.sock\nsocket-permissions = 0600\n",
        ),
    );
    let spec = d.loader(&["sd"]).load("web").unwrap().spec;
    assert_eq!(spec.kind, Kind::Process);
    assert_eq!(
        spec.start.argv,
        [
            "/bin/web",
            "--greet",
            "hello world",
            "hello",
            "world",
            "--more"
        ]
    );
    assert_eq!(spec.stop.unwrap().argv, ["/bin/web-stop"]);
    assert_eq!(spec.working_dir, Some(PathBuf::from("/srv")));
    assert_eq!(spec.credentials.uid, Some(0));
    assert_eq!(spec.credentials.groups, Some(vec![]));
    assert_eq!(spec.restart.mode, RestartMode::OnFailure);
    assert_eq!(spec.restart.delay, Duration::from_millis(1500));
    assert_eq!(spec.restart.limit_count, 7);
    assert_eq!(spec.restart.limit_interval, Duration::from_secs(30));
    assert!(spec.restart.smooth_recovery);
    assert_eq!(spec.start_timeout, None);
    assert_eq!(spec.stop_timeout, Some(Duration::from_secs(4)));
    assert_eq!(spec.stop_signal, Some(Signal::SIGINT));
    let deps: Vec<(&str, DepKind)> = spec
        .deps
        .iter()
        .map(|d| (d.name.as_str(), d.kind))
        .collect();
    assert_eq!(
        deps,
        [
            ("db", DepKind::Hard),
            ("net", DepKind::Milestone),
            ("cache", DepKind::WaitsFor),
            ("setup", DepKind::PreparedBy),
            ("login", DepKind::Before),
            ("early", DepKind::After),
        ]
    );
    assert_eq!(spec.chain_to.as_deref(), Some("next"));
    assert_eq!(spec.readiness, Readiness::NotifyFd(3));
    assert_eq!(
        spec.output,
        Output::File {
            path: PathBuf::from("/srv/web.log"),
            mode: 0o640,
            rotate: None,
        }
    );
    assert_eq!(spec.rlimits.len(), 2);
    assert_eq!(spec.rlimits[0].soft, Some(LimitValue::Value(100)));
    assert_eq!(spec.rlimits[0].hard, Some(LimitValue::Unlimited));
    assert_eq!(spec.nice, Some(-20));
    assert!(spec.flags.signal_process_only && spec.flags.always_chain && spec.flags.skippable);
    let socket = spec.socket.unwrap();
    assert_eq!(socket.path, PathBuf::from("/run/web.sock"));
    assert_eq!(socket.mode, 0o600);
}

#[test]
fn defaults_follow_dinit() {
    let d = Dirs::new();
    d.file("sd/plain", "# nothing set\n")
        .file("sd/bg", "type = bgprocess\ncommand = /bin/d\npid-file = /run/d.pid\nlog-type = buffer\nterm-signal = none\n")
        .file("sd/pipe", "type = process\ncommand = /bin/p\nlog-type = pipe\nready-notification = pipevar:READY_FD\n")
        .file("sd/reader", "type = process\ncommand = /bin/r\nconsumer-of = pipe\n");
    let l = d.loader(&["sd"]);
    let plain = l.load("plain").unwrap();
    assert_eq!(plain.description.service_type, ServiceType::Internal);
    assert_eq!(plain.spec.kind, Kind::Internal);
    assert_eq!(plain.spec.restart.mode, RestartMode::Always);
    assert_eq!(plain.spec.restart.delay, Duration::from_millis(200));
    assert_eq!(plain.spec.restart.limit_count, 3);
    assert_eq!(plain.spec.restart.limit_interval, Duration::from_secs(10));
    assert_eq!(plain.spec.start_timeout, Some(Duration::from_secs(60)));
    assert_eq!(plain.spec.stop_timeout, Some(Duration::from_secs(10)));
    assert_eq!(plain.spec.stop_signal, Some(Signal::SIGTERM));
    assert_eq!(plain.spec.output, Output::Discard);

    let bg = l.load("bg").unwrap().spec;
    assert_eq!(
        bg.kind,
        Kind::BackgroundProcess {
            pid_file: "/run/d.pid".into()
        }
    );
    assert_eq!(bg.output, Output::Buffer { size: 4096 });
    assert_eq!(bg.stop_signal, None);

    let pipe = l.load("pipe").unwrap().spec;
    assert_eq!(pipe.output, Output::Pipe);
    assert_eq!(pipe.readiness, Readiness::NotifyEnvVar("READY_FD".into()));
    assert_eq!(
        l.load("reader").unwrap().spec.input_from.as_deref(),
        Some("pipe")
    );
}

#[test]
fn env_file_and_load_options_make_the_service_environment() {
    let d = Dirs::new();
    d.file(
        "sd/svc",
        "type = process\ncommand = /bin/s $A ${B:-none}\nenv-file = svc.env\nload-options = export-service-name\n",
    )
    .file("sd/svc.env", "# comment\nA = spaced value \n!unset HOME\n");
    let loaded = d.loader(&["sd"]).load("svc@x").unwrap();
    // The value is everything after '=', verbatim.
    assert_eq!(
        loaded.description.command,
        ["/bin/s", " spaced value ", "none"]
    );
    let env: Vec<(String, String)> = loaded
        .spec
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect();
    assert!(env.contains(&("A".into(), " spaced value ".into())));
    // The daemon exports the base name.
    assert!(env.contains(&("DINIT_SERVICE".into(), "svc".into())));
    assert!(loaded.description.service_env.unset_vars().contains("HOME"));
}

#[test]
fn dependency_directories_and_includes_resolve_beside_the_file() {
    let d = Dirs::new();
    d.file(
        "sd/boot",
        "type = internal\n@include common.inc\nwaits-for.d = boot.d\n",
    )
    .file(
        "sd/common.inc",
        "depends-on = base\n@meta enable-via boot\n",
    )
    .file("sd/boot.d/one", "")
    .file("sd/boot.d/.skip", "");
    let boot = d.loader(&["sd"]).load("boot").unwrap().description;
    assert_eq!(boot.meta, ["enable-via boot"]);
    let deps: Vec<(&str, DepType, Option<&str>)> = boot
        .deps
        .iter()
        .map(|x| (x.name.as_str(), x.kind, x.from_dir.as_deref()))
        .collect();
    assert_eq!(
        deps,
        [
            ("base", DepType::Regular, None),
            ("one", DepType::WaitsFor, Some("boot.d"))
        ]
    );
    assert_eq!(boot.deps[0].pos.file, "common.inc");
    assert_eq!(boot.deps[0].pos.line, 1);
}

#[test]
fn symlinked_description_resolves_includes_from_the_target_directory() {
    let d = Dirs::new();
    d.file("real/svc", "type = internal\n@include part\n")
        .file("real/part", "depends-on = x\n");
    fs::create_dir_all(d.0.join("sd")).unwrap();
    symlink(d.0.join("real/svc"), d.0.join("sd/svc")).unwrap();
    let svc = d.loader(&["sd"]).load("svc").unwrap().description;
    assert_eq!(svc.deps[0].name, "x");
    assert_eq!(svc.service_dir, d.path("sd"));
}

#[test]
fn errors_name_file_line_and_setting() {
    let d = Dirs::new();
    d.file("sd/unknown", "type = internal\n\nfrob = 1\n")
        .file(
            "sd/badval",
            "type = process\ncommand = /bin/x\nrestart-delay = soon\n",
        )
        .file("sd/badline", "type = internal\nwhat is this\n")
        .file("sd/nocmd", "type = scripted\n")
        .file("sd/inc", "@include missing.inc\n")
        .file("sd/sub", "type = internal\ndepends-on = $1\n")
        .file("sd/cmdsub", "type = process\ncommand = /bin/x ${Y\n")
        .file(
            "sd/envf",
            "type = process\ncommand = /bin/x\nenv-file = gone.env\n",
        )
        .file("sd/cont", "type = process\ncommand = /bin/x \\\n");
    let l = d.loader(&["sd"]);
    let sd = d.path("sd");
    let cases = [
        (
            "unknown",
            format!("{sd}/unknown:3: unknown setting: 'frob'."),
        ),
        (
            "badval",
            format!("{sd}/badval:3: bad value for restart-delay"),
        ),
        ("badline", "badly formed line.".to_string()),
        ("nocmd", "'command' setting not specified.".to_string()),
        (
            "inc",
            "missing.inc: cannot open: No such file or directory".to_string(),
        ),
        (
            "sub",
            "setting 'depends-on': missing value in argument substitution".to_string(),
        ),
        (
            "cmdsub",
            "unmatched '{' in variable substitution".to_string(),
        ),
        (
            "envf",
            "could not load environment file: gone.env: No such file or directory".to_string(),
        ),
        (
            "cont",
            "end-of-file follows backslash escape character (`\\')".to_string(),
        ),
    ];
    for (name, text) in cases {
        let err = l.load(name).unwrap_err();
        assert_eq!(err.service_name(), name);
        assert_eq!(error_text(&err), text, "for {name}");
    }
    match l.load("badline").unwrap_err() {
        LoadError::Fatal { pos: Some(pos), .. } => assert_eq!(pos.line, 2),
        other => panic!("unexpected {other:?}"),
    }
    match l.load("badval").unwrap_err() {
        LoadError::Invalid {
            problem: Problem::AtLine { pos, .. },
            ..
        } => assert_eq!((pos.file, pos.line), (format!("{sd}/badval"), 3)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn lint_is_not_an_error_for_the_daemon() {
    let d = Dirs::new();
    d.file(
        "sd/x",
        "type = internal\ncommand = /bin/ignored\nlog-type = buffer\nwaits-for.d = nodir\n",
    );
    let x = d.loader(&["sd"]).load("x").unwrap();
    assert_eq!(x.description.log_type, LogType::Buffer);
    assert!(
        matches!(x.warnings.as_slice(), [Problem::DepDir { dir, .. }, Problem::Lint { .. }, Problem::Lint { .. }] if dir == "nodir"),
        "{:?}",
        x.warnings
    );
}
