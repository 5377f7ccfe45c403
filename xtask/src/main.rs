//! Build helpers for portbinder (`cargo xtask …`, see .cargo/config.toml):
//!
//! * `cargo xtask dist [DIR]` writes, under DIR (default `target/dist`):
//!   * `man/portbinder.8` and one `man/portbinder-SUBCOMMAND.8` per subcommand, generated
//!     with clap_mangen from `portbinder::cli::Cli` (the very definitions the binary parses),
//!     with EXIT STATUS and SIGNALS taken from the README's tables;
//!   * `man/portbinder.toml.5`, the configuration page (written by hand in
//!     packaging/man/portbinder.toml.5);
//!   * `completions/portbinder.bash`, `completions/_portbinder` (zsh) and
//!     `completions/portbinder.fish`, generated with clap_complete.
//!
//! The packages (Cargo.toml's `[package.metadata.deb]`, packaging/rpm/portbinder.spec) take
//! these files from `target/dist`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use portbinder::cli::Cli;

/// The README, for the exit codes and signals.
const README: &str = include_str!("../../README.md");
/// The hand-written configuration page.
const CONFIG_PAGE: &str = include_str!("../../packaging/man/portbinder.toml.5");
/// The man section of the daemon's pages (system administration).
const SECTION: &str = "8";
/// The footer's manual name.
const MANUAL: &str = "portbinder manual";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["dist"] => dist(&workspace_root().join("target/dist")),
        ["dist", dir] => dist(Path::new(dir)),
        _ => {
            eprintln!(
                "usage: cargo xtask dist [DIR]   (man pages and shell completions, default DIR target/dist)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_owned()
}

/// Writes every man page and completion file under `out`; returns their paths.
fn dist(out: &Path) -> io::Result<Vec<PathBuf>> {
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    for dir in [&man_dir, &completion_dir] {
        fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
    }
    let mut written = Vec::new();
    for (name, page) in man_pages()? {
        written.push(write(&man_dir.join(name), page.as_bytes())?);
    }
    written.push(write(
        &man_dir.join("portbinder.toml.5"),
        CONFIG_PAGE.as_bytes(),
    )?);
    for (shell, name) in [
        (Shell::Bash, "portbinder.bash"),
        (Shell::Zsh, "_portbinder"),
        (Shell::Fish, "portbinder.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "portbinder", &mut text);
        written.push(write(&completion_dir.join(name), &text)?);
    }
    Ok(written)
}

fn write(path: &Path, contents: &[u8]) -> io::Result<PathBuf> {
    fs::write(path, contents)
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))?;
    Ok(path.to_owned())
}

/// `(file name, roff text)` of portbinder(8) and of each subcommand's page.
fn man_pages() -> io::Result<Vec<(String, String)>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone()).section(SECTION).manual(MANUAL);
        let mut text = render(&man)?;
        text.push_str(&see_also(&["portbinder(8)", "portbinder.toml(5)"]));
        pages.push((man.get_filename(), text));
    }
    let man = Man::new(cmd).section(SECTION).manual(MANUAL);
    let mut text = render(&man)?;
    text.push_str(&readme_table_section("EXIT STATUS", "## Exit codes"));
    text.push_str(&readme_table_section("SIGNALS", "## Signals"));
    text.push_str(&files_section());
    text.push_str(&see_also(&[
        "portbinder.toml(5)",
        "systemd.service(5)",
        "systemd.socket(5)",
        "sd_notify(3)",
        "capabilities(7)",
    ]));
    pages.insert(0, (man.get_filename(), text));
    Ok(pages)
}

fn render(man: &Man) -> io::Result<String> {
    let mut bytes = Vec::new();
    man.render(&mut bytes)?;
    String::from_utf8(bytes).map_err(io::Error::other)
}

/// A section made of a README table (`| key | meaning |` rows under `heading`): one tagged
/// paragraph per row. Panics if the README lost the table, so the page cannot go stale
/// silently.
fn readme_table_section(title: &str, heading: &str) -> String {
    let rows = readme_table(heading);
    assert!(!rows.is_empty(), "README.md has no table under {heading:?}");
    let mut roff = Roff::default();
    roff.control("SH", [title]);
    for (key, meaning) in rows {
        roff.control("TP", []);
        roff.text([bold(key)]);
        roff.text([roman(meaning)]);
    }
    roff.to_roff()
}

/// The body rows of the first Markdown table after `heading`, as (first cell, second cell),
/// with backticks removed.
fn readme_table(heading: &str) -> Vec<(String, String)> {
    let Some(start) = README.lines().position(|l| l.trim() == heading) else {
        return Vec::new();
    };
    README
        .lines()
        .skip(start + 1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and |---| rule
        .filter_map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
            match cells[..] {
                [key, meaning, ..] => Some((key.replace('`', ""), meaning.replace('`', ""))),
                _ => None,
            }
        })
        .collect()
}

fn files_section() -> String {
    let mut roff = Roff::default();
    roff.control("SH", ["FILES"]);
    for (path, what) in [
        (
            portbinder::config::DEFAULT_CONFIG,
            "the configuration, see portbinder.toml(5)",
        ),
        (
            "/run/portbinder/NAME.sock",
            "the Unix socket of binding NAME (socket_dir in the configuration)",
        ),
        (
            "/usr/lib/systemd/system/portbinder.service",
            "the hardened systemd unit; portbinder@.socket binds a binding's addresses through systemd",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(path)]);
        roff.text([roman(what)]);
    }
    roff.to_roff()
}

fn see_also(pages: &[&str]) -> String {
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(pages.join(", "))]);
    roff.to_roff()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_page_with_every_long_option() {
        let pages = man_pages().unwrap();
        let cmd = Cli::command();
        assert_eq!(pages[0].0, "portbinder.8");
        for sub in cmd.get_subcommands() {
            let name = format!("portbinder-{}.8", sub.get_name());
            let (_, page) = pages
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("no page {name}"));
            for arg in sub.get_arguments() {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes: --config is written \-\-config.
                    let written = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&written), "{name} lacks --{long}");
                }
            }
        }
    }

    #[test]
    fn exit_codes_and_signals_come_from_the_readme() {
        let page = &man_pages().unwrap()[0].1;
        let codes = readme_table("## Exit codes");
        assert!(codes.len() >= 6, "{codes:?}");
        for (code, _) in &codes {
            assert!(
                page.contains(&format!("\\fB{code}\\fR")),
                "exit code {code}"
            );
        }
        assert!(page.contains(".SH SIGNALS") && page.contains("SIGHUP"));
    }

    /// The hand-written page and the example file must document every key of the
    /// README's configuration table.
    #[test]
    fn config_page_and_example_name_every_configuration_key() {
        let example = include_str!("../../packaging/portbinder.toml");
        let keys = readme_table("## Configuration");
        assert!(keys.len() >= 10, "{keys:?}");
        for (key, _) in keys {
            let key = key.trim_matches(['[', ']']).replace(".NAME", ".");
            assert!(CONFIG_PAGE.contains(&key), "portbinder.toml.5 lacks {key}");
            assert!(
                example.contains(&key),
                "packaging/portbinder.toml lacks {key}"
            );
        }
    }
}
