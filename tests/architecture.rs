//! Architecture check for the texaug workspace: no import circles between files, and the layer rules.
//!
//! It reads every `.rs` file of `stages/src` and `pipeline/src` as text (std only, so it builds in
//! seconds) and builds the graph of which file names which: `crate::`, `super::`, `self::` and
//! child-module paths, in `use` trees and inline in code, each resolved to the longest prefix that is
//! a module file. It fails when
//!
//! 1. files import each other in a circle: such files can only be read, tested and changed together.
//!    Each file on a circle is reported with its shortest circle, so every strongly connected
//!    component of more than one file shows up;
//! 2. a file reaches a sibling's item through the re-export-only facade (`mod.rs`, crate root) of its
//!    own room: that hides the file that defines the item and makes circles through the facade;
//! 3. a rule of [`RULES`] is broken.
//!
//! A facade's `mod x;` and its `pub use` of its own children are not dependencies. Test code (from a
//! `#[cfg(test)]` before `mod tests` to the end of the file, and the files it loads) is ignored, and
//! so are paths through a crate's name (`texaug_stages::…`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The crates checked: folders under the workspace root, each with a `src` folder.
const CRATES: &[&str] = &["stages", "pipeline"];

/// The layer rules, one a line: `crate module kind names…`, where a module includes its submodules,
/// `crate` is the crate root file alone, `*` is every file, and a module that does not exist (yet)
/// matches nothing. Kinds: `never-uses` (never depends on any of the modules named), `only-used-by`
/// (only the modules named depend on it), `never-mentions` (no identifier or string contains one of
/// the words).
const RULES: &str = "
    stages    diffusion  never-uses      source texture depth job
    stages    source     never-uses      diffusion texture depth job
    stages    texture    never-uses      diffusion job
    stages    depth      never-uses      texture job
    stages    render     never-uses      diffusion texture job
    stages    score      never-uses      source texture depth job render
    stages    *          never-mentions  texaug_pipeline texaug-pipeline
    pipeline  commands   only-used-by    commands crate cli
";

const HINT: &str =
    "hint: move the shared item into its own file, or import it from the file that defines it";

/// Keywords that make a facade more than a list of `mod` and `use` (and `macro_rules!`).
const ITEMS: &[&str] = &[
    "fn", "struct", "enum", "trait", "const", "static", "type", "impl",
];

type Module = Vec<String>;
type Token = (String, usize);
/// File dependencies: `(from, to)` → the first path written for it, and its line.
type Edges = BTreeMap<(usize, usize), (String, usize)>;

/// One `.rs` file that is not test code.
struct File {
    path: String,
    krate: String,
    module: Module,
    /// A crate root or a `mod.rs`.
    facade: bool,
    /// Defines an item of its own, not only `mod` and `use`.
    defines_items: bool,
    toks: Vec<Token>,
    refs: Vec<Ref>,
}

/// A path in code that may name a module: `crate::a::B`, `super::b`, `child::f`.
struct Ref {
    segments: Vec<String>,
    /// The module it is written in: the file's, plus any inline `mod x { }` around it.
    scope: Module,
    line: usize,
    /// Part of a `pub use` (any visibility).
    reexport: bool,
}

/// Lexes code into identifiers, string literals, `::` and single punctuation characters, each with
/// its line. Comments, numbers, lifetimes and char literals (`'"'`, not `'a`) are dropped.
fn tokens(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |j: usize| c.get(j).copied().unwrap_or(' ');
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let word_end = |from: usize| (from..c.len()).find(|&j| !word(c[j])).unwrap_or(c.len());
    let after = |from: usize, pat: &str| {
        let pat: Vec<char> = pat.chars().collect();
        (from..c.len())
            .find(|&j| c[j..].starts_with(&pat))
            .map_or(c.len(), |j| j + pat.len())
    };
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
        let (end, keep) = match (c[i], at(i + 1)) {
            ('/', '/') => (after(i, "\n"), false),
            ('/', '*') => (after(i + 2, "*/"), false),
            ('r', _) if (i == 0 || !word(c[i - 1])) && at(i + 1 + hashes) == '"' => (
                after(i + 2 + hashes, &format!("\"{}", "#".repeat(hashes))),
                true,
            ),
            ('"', _) => {
                let mut j = i + 1;
                while j < c.len() && c[j] != '"' {
                    j += if c[j] == '\\' { 2 } else { 1 };
                }
                ((j + 1).min(c.len()), true)
            }
            ('\'', '\\') => (after(i + 3, "'"), false),
            ('\'', _) if at(i + 2) == '\'' => (i + 3, false),
            ('\'', _) => (word_end(i + 1), false),
            (':', ':') => (i + 2, true),
            (ch, _) if word(ch) => (word_end(i), !ch.is_numeric()),
            (ch, _) => (i + 1, !ch.is_whitespace()),
        };
        let text: String = c[i..end].iter().collect();
        let newlines = text.matches('\n').count();
        if keep {
            out.push((text, line));
        }
        (i, line) = (end, line + newlines);
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
        && t.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
}

/// The name of a `mod name;` (`true`: a file) or `mod name {` line, with any visibility.
fn mod_decl(line: &str) -> Option<(&str, bool)> {
    let mut rest = line.trim();
    if let Some(r) = rest.strip_prefix("pub") {
        rest = r.trim_start();
        if rest.starts_with('(') {
            rest = rest[rest.find(')')? + 1..].trim_start();
        }
    }
    let rest = rest.strip_prefix("mod ")?.trim_start();
    let end = rest.find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))?;
    let after = rest[end..].trim_start();
    (after.starts_with(';') || after.starts_with('{'))
        .then(|| (&rest[..end], after.starts_with(';')))
}

/// The line where test code starts: a `#[cfg(test)]` whose item (after more attributes) is
/// `mod tests`. By this project's convention test code runs from there to the end of the file.
fn test_tail(lines: &[&str]) -> usize {
    let tests_follow = |i: usize| {
        let mut rest = lines[i + 1..].iter().map(|l| l.trim());
        let item = rest.find(|l| !l.is_empty() && !l.starts_with("#["));
        item.and_then(mod_decl)
            .is_some_and(|(name, _)| name == "tests")
    };
    let start = (0..lines.len()).find(|&i| lines[i].trim() == "#[cfg(test)]" && tests_follow(i));
    start.unwrap_or(lines.len())
}

/// Reads the use tree at `toks[*pos]` (`a::b::{self, c as d, e::*}`), adding the paths it names.
fn use_tree(toks: &[Token], pos: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let at = |p: usize| toks.get(p).map_or("", |(t, _)| t.as_str());
    loop {
        match at(*pos) {
            "::" => *pos += 1,
            "{" => {
                *pos += 1;
                while !matches!(at(*pos), "" | "}") {
                    let before = *pos;
                    use_tree(toks, pos, prefix.clone(), out);
                    *pos += usize::from(at(*pos) == "," || *pos == before);
                }
                *pos += 1;
                return;
            }
            t if is_ident(t) => {
                if t != "self" || prefix.is_empty() {
                    prefix.push(t.to_string());
                }
                *pos += if at(*pos + 1) == "as" { 3 } else { 1 };
                if at(*pos) != "::" {
                    return out.push(prefix);
                }
            }
            t => {
                *pos += usize::from(t == "*");
                return out.extend((!prefix.is_empty()).then_some(prefix));
            }
        }
    }
}

/// Every path that may name a module: `use` trees, and inline `a::b` paths not after `::` or `.`.
fn parse_refs(toks: &[Token], module: &Module) -> Vec<Ref> {
    let at = |p: usize| toks.get(p).map_or("", |(t, _)| t.as_str());
    let (mut refs, mut inline, mut depth, mut pending) = (Vec::new(), Vec::new(), 0, None);
    let mut i = 0;
    while i < toks.len() {
        let scope: Module = module
            .iter()
            .chain(inline.iter().map(|(name, _)| name))
            .cloned()
            .collect();
        let (line, start) = (toks[i].1, i);
        let path_start = i == 0 || !matches!(at(i - 1), "::" | ".");
        match at(i) {
            "{" => {
                depth += 1;
                inline.extend(pending.take().map(|name| (name, depth)));
            }
            "}" => {
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            "mod" if is_ident(at(i + 1)) && at(i + 2) == "{" => {
                pending = Some(at(i + 1).to_string())
            }
            "use" => {
                let (reexport, mut paths) = (i > 0 && matches!(at(i - 1), "pub" | ")"), Vec::new());
                i += 1;
                use_tree(toks, &mut i, Vec::new(), &mut paths);
                let to_ref = |segments| Ref {
                    segments,
                    scope: scope.clone(),
                    line,
                    reexport,
                };
                refs.extend(paths.into_iter().map(to_ref));
            }
            t if path_start && is_ident(t) && at(i + 1) == "::" && is_ident(at(i + 2)) => {
                let mut segments = vec![t.to_string()];
                while at(i + 1) == "::" && is_ident(at(i + 2)) {
                    segments.push(at(i + 2).to_string());
                    i += 2;
                }
                refs.push(Ref {
                    segments,
                    scope,
                    line,
                    reexport: false,
                });
            }
            _ => {}
        }
        i = i.max(start + 1);
    }
    refs
}

/// The non-test files of `sources` (path → text), mapped to modules and parsed.
fn load_files(sources: &BTreeMap<String, String>) -> Vec<File> {
    let (mut files, mut test_paths, mut test_modules) =
        (Vec::new(), BTreeSet::new(), BTreeSet::new());
    for (path, text) in sources {
        let Some((krate, rel)) = path
            .split_once("/src/")
            .filter(|(_, rel)| rel.ends_with(".rs"))
        else {
            continue;
        };
        // `lib.rs`/`main.rs` → the root, `a/mod.rs` → `a`, `a/b.rs` → `a::b`.
        let stem = rel.trim_end_matches(".rs");
        let stem = stem.strip_suffix("/mod").unwrap_or(stem);
        let module: Module = match stem {
            "lib" | "main" => Vec::new(),
            _ => stem.split('/').map(String::from).collect(),
        };
        let lines: Vec<&str> = text.lines().collect();
        let tail = test_tail(&lines);
        for line in &lines[tail..] {
            if let Some(p) = line
                .trim()
                .strip_prefix("#[path")
                .and_then(|r| r.split('"').nth(1))
            {
                test_paths.insert(format!("{}/{p}", &path[..path.rfind('/').unwrap_or(0)]));
            } else if let Some((name, true)) = mod_decl(line) {
                test_modules.insert((
                    krate.to_string(),
                    [&module[..], &[name.to_string()]].concat(),
                ));
            }
        }
        let toks = tokens(&lines[..tail].join("\n"));
        let defines_items = toks.iter().enumerate().any(|(i, (t, _))| {
            ITEMS.contains(&t.as_str())
                || (t == "macro_rules" && toks.get(i + 1).is_some_and(|n| n.0 == "!"))
        });
        files.push(File {
            path: path.clone(),
            krate: krate.to_string(),
            facade: module.is_empty() || rel == "mod.rs" || rel.ends_with("/mod.rs"),
            refs: parse_refs(&toks, &module),
            module,
            defines_items,
            toks,
        });
    }
    files.retain(|f| {
        let in_test = |(k, m): &(String, Module)| *k == f.krate && f.module.starts_with(m);
        !test_paths.contains(&f.path) && !test_modules.iter().any(in_test)
    });
    files
}

/// The file a path names: the longest prefix of its absolute path that is a module file of `krate`.
fn resolve(krate: &str, r: &Ref, index: &BTreeMap<(&str, &[String]), usize>) -> Option<usize> {
    let first = r.segments[0].as_str();
    let child = [&r.scope[..], &[first.to_string()]].concat();
    let (mut abs, skip) = match first {
        "crate" => (Vec::new(), 1),
        "self" => (r.scope.clone(), 1),
        "super" => (r.scope.clone(), 0),
        _ if index.contains_key(&(krate, &child[..])) => (r.scope.clone(), 0),
        _ => return None,
    };
    let mut rest = r.segments.iter().skip(skip).peekable();
    while rest.next_if(|s| *s == "super").is_some() {
        abs.pop()?;
    }
    abs.extend(rest.filter(|s| *s != "self").cloned());
    (0..=abs.len())
        .rev()
        .find_map(|n| index.get(&(krate, &abs[..n])).copied())
}

/// Whether `module` is in `room` (see [`RULES`]).
fn within(module: &[String], room: &str) -> bool {
    let m = module.join("::");
    match room {
        "*" => true,
        "crate" => m.is_empty(),
        _ => m == room || m.starts_with(&format!("{room}::")),
    }
}

/// The shortest circle from `v` back to `v`, as the files from `v` on; empty when there is none.
fn shortest_circle(v: usize, adj: &[Vec<usize>]) -> Vec<usize> {
    let (mut prev, mut queue) = (BTreeMap::new(), VecDeque::from([v]));
    while let Some(u) = queue.pop_front() {
        for &w in &adj[u] {
            if w == v {
                let mut circle = vec![u];
                while let Some(&p) = circle.last().and_then(|last| prev.get(last)) {
                    circle.push(p);
                }
                circle.reverse();
                return circle;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(u);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

/// Checks the source tree `sources` (workspace-relative path → text); one message per problem.
/// Edges into a re-export-only ancestor facade are reported here and left out of the circle graph.
fn check(sources: &BTreeMap<String, String>) -> Vec<String> {
    let files = load_files(sources);
    let index: BTreeMap<(&str, &[String]), usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| ((&f.krate[..], &f.module[..]), i))
        .collect();
    let (mut findings, mut deps, mut graph) = (Vec::new(), Edges::new(), Edges::new());
    for (a, f) in files.iter().enumerate() {
        for r in &f.refs {
            let Some(b) = resolve(&f.krate, r, &index).filter(|&b| b != a) else {
                continue;
            };
            let (to, written) = (&files[b], r.segments.join("::"));
            if f.facade && r.reexport && to.module.starts_with(&f.module) {
                continue; // a facade re-exporting its own children
            }
            deps.entry((a, b)).or_insert((written.clone(), r.line));
            if !to.facade || !f.module.starts_with(&to.module) || to.defines_items {
                graph.entry((a, b)).or_insert((written, r.line));
                continue;
            }
            // Name the file the facade re-exports the item from.
            let reexport = |s: &&Ref| s.reexport && s.segments.last() == r.segments.last();
            let home = to.refs.iter().filter(reexport);
            let home = home
                .filter_map(|s| resolve(&to.krate, s, &index))
                .find(|&c| c != b);
            let better = home.map_or("super::sibling::Thing".to_string(), |c| {
                let item = r.segments.last().map_or("", String::as_str);
                format!("crate::{}::{item}", files[c].module.join("::"))
            });
            findings.push(format!(
                "{}:{} imports `{written}` through {}, the re-export-only facade of its own room; \
                 import it from the file that defines it, e.g. `{better}`",
                f.path, r.line, to.path
            ));
        }
    }
    findings.extend(rule_findings(&files, &deps));
    findings.extend(circle_findings(&files, &graph));
    findings
}

/// The dependencies `(from, to) → (path written, line)` that break a rule of [`RULES`].
fn rule_findings(files: &[File], deps: &Edges) -> Vec<String> {
    let mut findings = Vec::new();
    for rule in RULES
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
    {
        let [krate, room, kind, names @ ..] = &rule[..] else {
            continue;
        };
        let ours = |f: &File| f.krate == *krate;
        if *kind == "never-mentions" {
            for f in files.iter().filter(|f| ours(f) && within(&f.module, room)) {
                for (t, line) in f
                    .toks
                    .iter()
                    .filter(|(t, _)| names.iter().any(|w| t.contains(w)))
                {
                    findings.push(format!(
                        "{}:{line} has `{t}`, against the rule `{}`",
                        f.path,
                        rule.join(" ")
                    ));
                }
            }
            continue;
        }
        assert!(
            matches!(*kind, "never-uses" | "only-used-by"),
            "unknown kind {kind:?} in RULES"
        );
        for (&(a, b), (written, line)) in deps {
            let (f, to) = (&files[a], &files[b]);
            let named = |m: &Module| names.iter().any(|n| within(m, n));
            let broken = match *kind {
                "never-uses" => within(&f.module, room) && named(&to.module),
                _ => within(&to.module, room) && !named(&f.module),
            };
            if ours(f) && broken {
                let rule = rule.join(" ");
                findings.push(format!(
                    "{}:{line} names `{written}` ({}), against the rule `{rule}`",
                    f.path, to.path
                ));
            }
        }
    }
    findings
}

/// One message per circle: the shortest circle through each file that is on one.
fn circle_findings(files: &[File], graph: &Edges) -> Vec<String> {
    let mut findings = Vec::new();
    let mut adj = vec![Vec::new(); files.len()];
    graph.keys().for_each(|&(a, b)| adj[a].push(b));
    let mut circles = BTreeSet::new();
    for v in 0..files.len() {
        let mut circle = shortest_circle(v, &adj);
        let first = (0..circle.len()).min_by_key(|&i| circle[i]).unwrap_or(0);
        circle.rotate_left(first);
        if circle.is_empty() || !circles.insert(circle.clone()) {
            continue;
        }
        let name = |&i: &usize| match files[i].module.join("::") {
            m if m.is_empty() => "crate".to_string(),
            m => m,
        };
        let names: Vec<String> = circle.iter().chain(&circle[..1]).map(name).collect();
        let mut msg = format!(
            "import circle in {}: {}",
            files[v].krate,
            names.join(" -> ")
        );
        for (k, &from) in circle.iter().enumerate() {
            let to = circle[(k + 1) % circle.len()];
            let (written, line) = &graph[&(from, to)];
            msg += &format!(
                "\n    {}:{line} names `{written}` -> {}",
                files[from].path, files[to].path
            );
        }
        findings.push(msg);
    }
    findings
}

/// Every `.rs` file under `<root>/<crate>/src` of the [`CRATES`], keyed by its path from `root`.
fn load_sources(root: &Path) -> BTreeMap<String, String> {
    let (mut out, mut dirs) = (BTreeMap::new(), Vec::new());
    dirs.extend(CRATES.iter().map(|c| root.join(c).join("src")));
    while let Some(dir) = dirs.pop() {
        let list = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in list {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path);
                let text = text.unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, text);
            }
        }
    }
    out
}

#[test]
fn workspace_has_no_import_circles_and_keeps_its_layers() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the pipeline crate sits in the workspace root");
    let sources = load_sources(root);
    assert!(
        sources.contains_key("stages/src/lib.rs"),
        "no stages/src/lib.rs under {}",
        root.display()
    );
    let findings = check(&sources);
    let n = findings.len();
    assert!(
        n == 0,
        "{n} architecture problem(s):\n\n{}\n\n{HINT}",
        findings.join("\n\n")
    );
}

#[cfg(test)]
mod checker {
    use super::*;

    /// A source tree written as one text: a line `== path` starts each file; lines are trimmed.
    fn tree(text: &str) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        let mut current = String::new();
        for line in text.lines().map(str::trim) {
            match line.strip_prefix("== ") {
                Some(path) => current = path.to_string(),
                None => files
                    .entry(current.clone())
                    .or_insert_with(String::new)
                    .push_str(&format!("{line}\n")),
            };
        }
        files
    }

    fn has(findings: &[String], needle: &str) {
        let found = findings.iter().any(|f| f.contains(needle));
        assert!(found, "no finding has {needle:?}: {findings:#?}");
    }

    #[test]
    fn finds_a_circle_through_use_groups() {
        let f = check(&tree(
            "== stages/src/lib.rs
            pub mod room;
            == stages/src/room/mod.rs
            pub mod a;
            pub mod b;
            pub mod c;
            == stages/src/room/a.rs
            use super::{b::{self, Bee}, c};
            == stages/src/room/c.rs
            pub struct Sea;
            == stages/src/room/b.rs
            // A comment.
            use super::{c::Sea, a::A};",
        ));
        has(&f, "import circle in stages: room::a -> room::b -> room::a");
        has(
            &f,
            "stages/src/room/b.rs:2 names `super::a::A` -> stages/src/room/a.rs",
        );
        assert_eq!(f.len(), 1, "{f:#?}");
    }

    #[test]
    fn finds_a_circle_through_an_inline_crate_path() {
        let f = check(&tree(
            "== pipeline/src/main.rs
            mod ledger;
            mod sinks;
            == pipeline/src/ledger.rs
            pub fn open() { crate::sinks::write_atomic(); }
            == pipeline/src/sinks.rs
            pub fn f(_: &crate::ledger::Ledger) {}",
        ));
        has(&f, "import circle in pipeline: ledger -> sinks -> ledger");
    }

    #[test]
    fn a_facade_reexporting_its_children_is_no_dependency() {
        let text = "== stages/src/lib.rs
            pub mod other;
            pub mod room;
            == stages/src/other.rs
            use crate::room::A;
            == stages/src/room/a.rs
            use crate::other::Tool;
            == stages/src/room/mod.rs
            mod a;
            pub use a::A;
            pub use self::a::{Helper as H};
            ";
        assert_eq!(check(&tree(text)), Vec::<String>::new());
        // Naming the child in its own code is a dependency like any other.
        let f = check(&tree(&format!("{text}pub fn make() -> a::A {{ a::A }}")));
        has(
            &f,
            "import circle in stages: other -> room -> room::a -> other",
        );
    }

    #[test]
    fn a_child_importing_through_its_reexport_only_facade_is_flagged() {
        let text = "== stages/src/lib.rs
            pub mod room;
            == stages/src/room/a.rs
            use super::Bee;
            == stages/src/room/b.rs
            pub struct Bee;
            == stages/src/room/mod.rs
            mod a;
            mod b;
            pub use b::Bee;
            ";
        let f = check(&tree(text));
        has(
            &f,
            "room/a.rs:1 imports `super::Bee` through stages/src/room/mod.rs",
        );
        has(&f, "e.g. `crate::room::b::Bee`");
        assert_eq!(f.len(), 1, "{f:#?}");
        // A facade that defines items of its own is an ordinary dependency; only circles count then.
        assert_eq!(
            check(&tree(&format!("{text}pub struct Own;"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn layer_rules_are_enforced() {
        let f = check(&tree(
            "== stages/src/lib.rs
            pub mod diffusion;
            pub mod source;
            == stages/src/diffusion/mod.rs
            pub mod unet;
            == stages/src/diffusion/unet.rs
            use crate::source::Mesh; // A comment may say texaug_pipeline.
            == stages/src/source.rs
            pub struct Mesh;
            const P: &str = \"texaug-pipeline\";
            == pipeline/src/main.rs
            mod commands;
            mod plan;
            fn main() { commands::run() }
            == pipeline/src/commands/mod.rs
            pub const EXIT: u8 = 1;
            == pipeline/src/plan.rs
            fn plan() { texaug_stages::diffusion::x(crate::commands::EXIT) }",
        ));
        has(
            &f,
            "diffusion/unet.rs:1 names `crate::source::Mesh` (stages/src/source.rs), against",
        );
        has(
            &f,
            "the rule `stages diffusion never-uses source texture depth job`",
        );
        has(
            &f,
            "stages/src/source.rs:2 has `\"texaug-pipeline\"`, against the rule `stages * never-",
        );
        has(
            &f,
            "plan.rs:1 names `crate::commands::EXIT` (pipeline/src/commands/mod.rs), against",
        );
        has(
            &f,
            "the rule `pipeline commands only-used-by commands crate cli`",
        );
        assert_eq!(f.len(), 3, "{f:#?}");
    }

    #[test]
    fn test_code_comments_and_strings_are_ignored() {
        let f = check(&tree(
            "== pipeline/src/main.rs
            mod ledger;
            mod plan;
            mod pool;
            mod sinks;
            == pipeline/src/plan.rs
            use crate::pool::Pool;
            == pipeline/src/pool.rs
            pub struct Pool; // crate::plan::Plan
            /* crate::plan::Plan */
            const S: &str = \"crate::plan::Plan\";
            const R: &str = r#\"crate::plan::Plan\"#;
            #[cfg(test)]
            #[path = \"pool_tests.rs\"]
            mod tests;
            == pipeline/src/pool_tests.rs
            use crate::plan::Plan;
            == pipeline/src/ledger.rs
            pub fn g() {}
            #[cfg(test)]
            mod tests {
                use crate::sinks::f;
            }
            == pipeline/src/sinks.rs
            pub fn f() { crate::ledger::g() }",
        ));
        assert_eq!(f, Vec::<String>::new());
        let toks = tokens("let c = '\"'; // x \"\nfn f<'a>(s: &'a str) {} /* y\n */ s::t");
        let text: Vec<&str> = toks.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            text.join(" "),
            "let c = ; fn f < > ( s : & str ) { } s :: t"
        );
        assert_eq!(toks.last(), Some(&("t".to_string(), 3)));
    }
}
