//! The Hugging Face Hub as users meet it, against a loopback server in the hub's layout (nothing leaves the
//! machine): a `[model] id` missing from the cache is downloaded through `HF_ENDPOINT` into `HF_HUB_CACHE` with
//! the `HF_TOKEN` it was given, then runs; a gated repository without (or with a wrong) token is an error that
//! says how to get access; `HF_HUB_OFFLINE=1` downloads nothing and names the command to run.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const TOKEN: &str = "hf_loopback_secret";

/// Serves `files` (repo-relative path → bytes) of `org/tiny` as the hub does: the repository listing, and each
/// file with `etag`, `x-repo-commit` and ranged reads. Every request needs `Authorization: Bearer TOKEN`.
/// Returns the endpoint and the request lines seen.
fn serve(files: Vec<(String, Vec<u8>)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            handle(stream, &files, &log);
        }
    });
    (endpoint, seen)
}

fn handle(stream: TcpStream, files: &[(String, Vec<u8>)], log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let (mut range, mut auth) = (None, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = Some(v.trim().to_owned());
        }
        if lower.starts_with("authorization:") {
            auth = Some(line["authorization:".len()..].trim().to_owned());
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("").to_owned();
    log.lock().unwrap().push(path.clone());
    let mut out = stream;
    let reply = |out: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(body);
    };
    if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        reply(
            &mut out,
            "401 Unauthorized",
            &[],
            b"{\"error\":\"Access to model org/tiny is restricted.\"}",
        );
        return;
    }
    if path.starts_with("/api/models/org/tiny") {
        let siblings: Vec<String> = files
            .iter()
            .map(|(p, _)| format!("{{\"rfilename\":\"{p}\"}}"))
            .collect();
        let body = format!(
            "{{\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}",
            siblings.join(",")
        );
        reply(
            &mut out,
            "200 OK",
            &[("Content-Type".into(), "application/json".into())],
            body.as_bytes(),
        );
        return;
    }
    let Some(file) = path.strip_prefix("/org/tiny/resolve/main/") else {
        reply(&mut out, "404 Not Found", &[], b"");
        return;
    };
    let Some((_, bytes)) = files.iter().find(|(p, _)| p == file) else {
        reply(&mut out, "404 Not Found", &[], b"");
        return;
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let end = match range
        .as_deref()
        .and_then(|r| r.split('-').nth(1))
        .filter(|e| !e.is_empty())
    {
        Some(e) => e.parse::<usize>().unwrap() + 1,
        None => bytes.len(),
    }
    .min(bytes.len());
    let etag = texaug_stages::files::sha256_hex(bytes);
    let headers = vec![
        ("ETag".into(), format!("\"{etag}\"")),
        ("X-Repo-Commit".into(), COMMIT.into()),
        (
            "Content-Range".into(),
            format!("bytes {start}-{}/{}", end.saturating_sub(1), bytes.len()),
        ),
    ];
    reply(
        &mut out,
        "206 Partial Content",
        &headers,
        &bytes[start.min(end)..end],
    );
}

/// The tiny model's files, repo-relative.
fn repo_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (rel, bytes) in tree(dir) {
        out.push((rel.to_string_lossy().replace('\\', "/"), bytes));
    }
    out
}

fn recipe_for_hub(dir: &Path) -> PathBuf {
    let manifest = write_sources(dir, 1, false);
    let plain = write_recipe(dir, &manifest, 1, 1);
    let text = std::fs::read_to_string(&plain).unwrap();
    let line = format!("path = \"{}\"", tiny_model().display());
    let path = dir.join("hub.toml");
    std::fs::write(&path, text.replace(&line, "id = \"org/tiny\"")).unwrap();
    path
}

fn run_with(envs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = texaug();
    cmd.args(args)
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_hub_id_downloads_through_the_endpoint_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, seen) = serve(repo_files(tiny_model()));
    let recipe = recipe_for_hub(dir.path());
    let cache = dir.path().join("hub-cache");
    let cache_s = cache.to_str().unwrap();
    let base = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HUB_CACHE", cache_s),
        ("HF_HOME", cache_s),
    ];

    // Offline: nothing is fetched, and the message names the download command.
    let mut env = base.to_vec();
    env.push(("HF_HUB_OFFLINE", "1"));
    let o = run_with(
        &env,
        &["run", recipe.to_str().unwrap(), "--progress", "none"],
    );
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("huggingface-cli download org/tiny"),
        "{out}"
    );
    assert!(seen.lock().unwrap().is_empty(), "offline made requests");

    // Gated: without a token, and with a wrong one, the error says how to get access.
    for token in [None, Some("hf_wrong")] {
        let mut env = base.to_vec();
        if let Some(t) = token {
            env.push(("HF_TOKEN", t));
        }
        let o = run_with(
            &env,
            &["run", recipe.to_str().unwrap(), "--progress", "none"],
        );
        let out = text(&o);
        assert!(
            !o.status.success() && out.contains("gated or private") && out.contains("HF_TOKEN"),
            "{out}"
        );
        assert_eq!(
            out.contains("the token given was refused"),
            token.is_some(),
            "{out}"
        );
    }

    // With the token: downloaded into the cache in the hub's layout, and the run completes.
    let mut env = base.to_vec();
    env.push(("HF_TOKEN", TOKEN));
    let o = run_with(
        &env,
        &["run", recipe.to_str().unwrap(), "--progress", "none"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let snapshot = cache.join("models--org--tiny/snapshots").join(COMMIT);
    assert!(
        snapshot.join("unet/config.json").exists(),
        "{}",
        snapshot.display()
    );
    assert_eq!(
        std::fs::read_to_string(cache.join("models--org--tiny/refs/main"))
            .unwrap()
            .trim(),
        COMMIT
    );
    let mut weights = Vec::new();
    std::fs::File::open(snapshot.join("unet/diffusion_pytorch_model.safetensors"))
        .unwrap()
        .read_to_end(&mut weights)
        .unwrap();
    assert_eq!(
        weights,
        std::fs::read(tiny_model().join("unet/diffusion_pytorch_model.safetensors")).unwrap()
    );
}

/// A cluster pre-fetches once: `validate` never downloads (it names `texaug model fetch`), `model fetch` fills
/// the cache (with the token), and a run with HF_HUB_OFFLINE=1 then reads only the cache.
#[test]
fn validate_never_downloads_and_model_fetch_fills_the_cache_once() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, seen) = serve(repo_files(tiny_model()));
    let recipe = recipe_for_hub(dir.path());
    let cache = dir.path().join("hub-cache");
    let cache_s = cache.to_str().unwrap();
    let env = [
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HUB_CACHE", cache_s),
        ("HF_HOME", cache_s),
        ("HF_TOKEN", TOKEN),
    ];

    let o = run_with(&env, &["validate", recipe.to_str().unwrap()]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("texaug model fetch org/tiny"),
        "{out}"
    );
    assert!(seen.lock().unwrap().is_empty(), "validate made requests");

    let o = run_with(&env, &["model", "fetch", "org/tiny"]);
    assert!(o.status.success(), "{}", text(&o));
    let requests = seen.lock().unwrap().len();
    assert!(requests > 0);
    assert!(cache
        .join("models--org--tiny/snapshots")
        .join(COMMIT)
        .join("unet/config.json")
        .is_file());

    // A second fetch finds it complete and asks nothing; validate and an offline run read the cache only.
    let o = run_with(&env, &["model", "fetch", "org/tiny"]);
    assert!(
        o.status.success() && text(&o).contains("already complete"),
        "{}",
        text(&o)
    );
    let o = run_with(&env, &["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let mut offline = env.to_vec();
    offline.push(("HF_HUB_OFFLINE", "1"));
    let o = run_with(
        &offline,
        &["run", recipe.to_str().unwrap(), "--progress", "none"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        seen.lock().unwrap().len(),
        requests,
        "requests after the fetch"
    );

    let o = run_with(&offline, &["model", "fetch", "org/tiny"]);
    assert!(
        !o.status.success() && text(&o).contains("HF_HUB_OFFLINE"),
        "{}",
        text(&o)
    );
}
