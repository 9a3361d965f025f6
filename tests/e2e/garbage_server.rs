//! A server that answers every request with random bytes: coffer fails with
//! one clear line and a storage or integrity exit code, never a crash or
//! a hang.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use coffer_e2e::{run_with_input, stderr, TestRepo};

const SERVER: &str = r#"
import http.server, os, socketserver
class Garbage(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = os.urandom(64)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_PUT = do_POST = do_DELETE = answer
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "64")
        self.end_headers()
    def log_message(self, *args):
        pass
server = socketserver.TCPServer(("127.0.0.1", 0), Garbage)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_answering_garbage_gets_one_clear_line() {
    let mut child = Command::new("python3")
        .args(["-c", SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let _server = Killed(child);
    let repo = TestRepo::uninitialised();
    for args in [
        &["snapshots"][..],
        &["backup", "--stdin"],
        &["restore", "latest"],
    ] {
        let mut cmd = repo.command(args);
        cmd.env("COFFER_REPOSITORY", "s3://bucket/repo")
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", port.trim()),
            )
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
            .args(["-o", "max_retries=1", "-o", "retry_timeout=2s"]);
        let out = run_with_input(cmd, b"some data");
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(16) | Some(18)),
            "{args:?}: {:?} {err}",
            out.status
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("storage error") || err.contains("corrupt"),
            "{err}"
        );
    }
}
