//! The docs checked against the code: protocol names in `docs/PROTOCOL.md`, settings in
//! `docs/configuration.md` against `--help`, paths and links that must resolve, and the
//! README's length.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use meshchat::Config;

/// The protocol document's file name, spelt in two parts so that this file's own text
/// never holds a bare mention of it (the path check below scans `tests/`).
const PROTOCOL: &str = concat!("PROTOCOL", ".md");

/// Longest README, in lines.
const README_MAX_LINES: usize = 250;

/// Documented with the settings although no flag reads it.
const NOT_FLAGS: [&str; 1] = ["RUST_LOG"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let full = root().join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every `.rs` file directly in `dir`, sorted.
fn rust_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

/// The string literals in `text`, in order (escapes kept as written).
fn string_literals(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    found
}

/// The body of the first `fn name` in `text`, braces matched (none in its strings).
fn fn_body<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("fn {name}("))?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open..=open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// The values of the string constants (`const X: &str = "..."`) in `src/protocol/`.
fn protocol_constants() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in rust_files("src/protocol") {
        let text = read(&file);
        for line in text.lines().map(str::trim_start) {
            let declares = line.contains("const ") && line.contains("str =");
            if declares && let Some(value) = string_literals(line).first() {
                names.insert((*value).to_owned());
            }
        }
    }
    names
}

/// The refusal reasons: every string `Refusal::reason` can return. The count is checked
/// against the enum's variants, so a scan that missed one would fail too.
fn refusal_reasons() -> BTreeSet<String> {
    let text = read("src/protocol/refusal.rs");
    let body = fn_body(&text, "reason").expect("src/protocol/refusal.rs has no `fn reason`");
    let reasons: BTreeSet<String> = string_literals(body)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let variants = text.matches("#[error(").count();
    assert_eq!(
        reasons.len(),
        variants,
        "`Refusal` has {variants} variants but the scan found {} reasons: {reasons:?}",
        reasons.len()
    );
    reasons
}

/// Names in `names` that `doc` does not mention as code (`` `name` ``).
fn missing_from<'a>(doc: &str, names: &'a BTreeSet<String>) -> Vec<&'a str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .collect()
}

/// Every event name the code defines is documented in docs/PROTOCOL.md.
#[test]
fn every_event_name_is_in_the_protocol_doc() {
    let events = protocol_constants();
    for known in [
        "create-room",
        "rtc-offer",
        "user-disconnected",
        "request-error",
    ] {
        assert!(
            events.contains(known),
            "the scan missed {known}: {events:?}"
        );
    }
    let doc = read(Path::new("docs").join(PROTOCOL));
    let missing = missing_from(&doc, &events);
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md lacks events {missing:?}"
    );
}

/// Every refusal reason the code can send is documented in docs/PROTOCOL.md.
#[test]
fn every_refusal_reason_is_in_the_protocol_doc() {
    let reasons = refusal_reasons();
    assert!(reasons.contains("room_full"), "the scan missed room_full");
    let doc = read(Path::new("docs").join(PROTOCOL));
    let missing = missing_from(&doc, &reasons);
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md lacks reasons {missing:?}"
    );
}

/// The long flags and environment variables `meshchat --help` lists.
fn settings() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut flags = BTreeSet::new();
    let mut vars = BTreeSet::new();
    for arg in Config::command().get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        let long = arg
            .get_long()
            .unwrap_or_else(|| panic!("{id} has no long flag"));
        flags.insert(format!("--{long}"));
        if let Some(env) = arg.get_env() {
            vars.insert(env.to_string_lossy().into_owned());
        }
    }
    (flags, vars)
}

/// The code spans of the first two cells (variable, flag) of every table row.
fn table_names(doc: &str) -> Vec<String> {
    let mut names = Vec::new();
    for row in doc.lines().filter(|l| l.trim_start().starts_with('|')) {
        for cell in row.split('|').skip(1).take(2) {
            names.extend(
                cell.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(|span| span.trim().to_owned()),
            );
        }
    }
    names
}

/// Every flag and environment variable of `--help` is documented in docs/configuration.md.
#[test]
fn every_setting_is_in_the_configuration_doc() {
    let (flags, vars) = settings();
    assert!(
        flags.contains("--port") && vars.contains("PORT"),
        "{flags:?}"
    );
    let doc = read("docs/configuration.md");
    let mut missing = missing_from(&doc, &flags);
    missing.extend(missing_from(&doc, &vars));
    assert!(
        missing.is_empty(),
        "docs/configuration.md lacks {missing:?}"
    );
}

/// Every flag and variable named in the settings tables of docs/configuration.md and the
/// README still exists.
#[test]
fn every_documented_setting_exists() {
    let (flags, vars) = settings();
    let is_setting = |n: &String| {
        n.starts_with("--")
            || (!n.is_empty() && n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
    };
    for page in ["docs/configuration.md", "README.md"] {
        let names = table_names(&read(page));
        assert!(
            names.iter().any(|n| n == "PORT"),
            "{page}: no settings table found"
        );
        let stale: Vec<&String> = names
            .iter()
            .filter(|n| is_setting(n))
            .filter(|n| !flags.contains(*n) && !vars.contains(*n))
            .filter(|n| !NOT_FLAGS.contains(&n.as_str()))
            .collect();
        assert!(
            stale.is_empty(),
            "{page} names settings that do not exist: {stale:?}"
        );
    }
}

/// Every file under `dir`, skipping `node_modules` and `target`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "node_modules" && name != "target" {
                walk(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// Every mention of the protocol document in src/, public/js/, bench/ and tests/ names a
/// path that exists from the repository root.
#[test]
fn every_protocol_doc_mention_resolves() {
    let mut files = Vec::new();
    for dir in ["src", "public/js", "bench", "tests"] {
        walk(&root().join(dir), &mut files);
    }
    let mut broken = Vec::new();
    for file in &files {
        // Binary files and the like hold no mention worth checking.
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for (at, _) in text.match_indices(PROTOCOL) {
            let start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
                .map_or(0, |i| i + 1);
            let path = &text[start..at + PROTOCOL.len()];
            if !root().join(path).is_file() {
                let shown = file.strip_prefix(root()).unwrap_or(file);
                broken.push(format!("{}: {path}", shown.display()));
            }
        }
    }
    assert!(broken.is_empty(), "mentions of missing files: {broken:?}");
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The anchors of the headings of a markdown file.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter_map(|line| line.strip_prefix('#'))
        .map(|rest| slug(rest.trim_start_matches('#')))
        .collect()
}

/// The link targets of a markdown file: `[text](target)` and `src="target"`.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        for (opener, closer) in [("](", ')'), ("src=\"", '"')] {
            for (at, _) in line.match_indices(opener) {
                let rest = &line[at + opener.len()..];
                if let Some(end) = rest.find(closer) {
                    found.push(rest[..end].to_owned());
                }
            }
        }
    }
    found
}

/// Every relative link in README.md and docs/*.md names a file that exists, and an anchor
/// in it names one of that file's headings.
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut pages = vec![root().join("README.md")];
    pages.extend(
        fs::read_dir(root().join("docs"))
            .expect("docs/")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().expect("a page has a folder").join(path)
            };
            let ok = target.exists()
                && (anchor.is_empty()
                    || fs::read_to_string(&target).is_ok_and(|t| anchors(&t).contains(anchor)));
            if !ok {
                let shown = page.strip_prefix(root()).unwrap_or(page);
                broken.push(format!("{}: {link}", shown.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:?}");
}

/// The README stays short enough to read in five minutes.
#[test]
fn the_readme_is_short() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move detail to docs/"
    );
}
