//! The command line itself: every subcommand's `--help` shows an example, and
//! `completions` prints scripts the shells accept.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_hookgate");

fn run(args: &[&str]) -> String {
    let output = Command::new(BINARY).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "hookgate {args:?} failed: {output:?}"
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands listed under `Commands:` in a help text (clap's own
/// `help` entry aside).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_help_shows_an_example() {
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = run(&args);
        assert!(
            help.contains("Example"),
            "`hookgate {}` has no example:\n{help}",
            path.join(" ")
        );
        for name in subcommands(&help) {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
        seen += 1;
    }
    // hookgate, serve, check, transform, transform run, completions at least.
    assert!(seen >= 6, "only {seen} help texts found");
}

#[test]
fn bash_completion_registers_and_completes_subcommands() {
    let script = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.bash");
    std::fs::write(&file, script).unwrap();
    // Source the script, then ask its completion function what follows `hookgate s`.
    let probe = format!(
        "source {}; COMP_WORDS=(hookgate s); COMP_CWORD=1; COMP_LINE='hookgate s'; COMP_POINT=10; \
         _hookgate hookgate s hookgate; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let output = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let replies = String::from_utf8_lossy(&output.stdout);
    assert!(
        replies.lines().any(|l| l == "serve"),
        "no `serve` completion: {output:?}"
    );
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    for shell in ["zsh", "fish"] {
        let script = run(&["completions", shell]);
        for name in ["serve", "check", "transform", "completions"] {
            assert!(script.contains(name), "{shell} completion lacks {name}");
        }
    }
}
