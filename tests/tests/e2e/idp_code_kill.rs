//! `kill -9` of the process that has just answered a code exchange: the code stays used.
//!
//! A child process (this test binary again, with `CODE_KILL_DIR` set) opens an IdP
//! database, issues a code, redeems it and issues its tokens as the token endpoint does
//! (the code marked used, the tokens written, one shared flush), then prints the code, as
//! if answering, and waits. The test kills it with SIGKILL at once, opens the same
//! database and redeems the code again: refused (`invalid_grant`), and the tokens it gave
//! are known. Without the flush before the answer, sled would have kept both the used mark
//! and the tokens in its buffers (it writes them out every 500 ms) and the code would work
//! twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use milagro_idp::authentication::Authenticated;
use milagro_idp::grants::{Authorization, Grants, TokenKind};
use milagro_service::sled_db::open_waiting_for_lock;

const DIR_VAR: &str = "CODE_KILL_DIR";
const TEST: &str = "idp_code_kill::a_code_redeemed_before_a_kill_9_stays_used_after_the_restart";

#[test]
fn a_code_redeemed_before_a_kill_9_stays_used_after_the_restart() {
    if let Some(dir) = std::env::var_os(DIR_VAR) {
        redeem_then_wait(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut answered = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            // After the harness's `test NAME ... ` on the same line.
            if let Some((_, rest)) = line.split_once("answered ") {
                answered = Some(rest.to_owned());
                break;
            }
        }
        // SIGKILL, as soon as the answer is out.
        child.kill().unwrap();
        child.wait().unwrap();
        let answered = answered.expect("the child answered");
        let (code, access) = answered.split_once(' ').unwrap();

        let db = open_waiting_for_lock(dir.path()).unwrap();
        let grants = Grants::open(&db, 3600).unwrap();
        let now = milagro_service::unix_now();
        let again = grants.redeem_code(code, now, |_| Ok(())).unwrap_err();
        assert_eq!(again.code(), "invalid_grant", "{again}");
        // The tokens were durable too (the reuse has revoked them since).
        assert_eq!(
            grants.access(access, now).unwrap_err().code(),
            "invalid_token"
        );
    }
}

/// The child: one exchange's storage work, then the answer, then nothing until killed.
fn redeem_then_wait(dir: &std::path::Path) -> ! {
    let db = open_waiting_for_lock(dir).unwrap();
    let grants = Grants::open(&db, 3600).unwrap();
    let now = milagro_service::unix_now();
    let who = Authenticated::by_password("subject", now);
    let auth = Authorization::new("client", &who, "openid", None);
    let code = grants
        .issue_code(auth, "https://rp.test/cb", None, now + 60)
        .unwrap();
    let redeemed = grants.redeem_code(&code, now, |_| Ok(())).unwrap();
    let [access] = grants
        .issue_tokens(&redeemed, [(TokenKind::Access, now + 60)])
        .unwrap();
    println!("answered {} {}", code.as_str(), access.as_str());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}
