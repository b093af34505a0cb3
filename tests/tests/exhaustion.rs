//! Threat model, attack 13.7 "exhausting a service", against real servers on loopback:
//!
//! - 500 connections to each of the TBS and the IdP that stop sending (400 after a head
//!   announcing a body, 100 in the middle of a head) do not keep an honest client out,
//!   and the servers close every one of them after their read deadlines;
//! - 400 connections that each send one quick request and then the start of a second
//!   head (which actix does not time) get keep-alive only while few connections are
//!   open: at most 256 are held that way, the others are closed after their answer;
//! - 2,000 wrong-password logins sent to the IdP at once, then hundreds more at the rate
//!   its queue admits, keep its memory under the bound `docs/idp.md` documents (the
//!   password slots plus connection overhead), and it returns near the baseline.
//!
//! The services run in this test process (as in every test of this crate), so the
//! memory measured is this process's resident set: the IdP, and the flood's client,
//! which is one thread of small buffers. The two tests take [`ALONE`] so that the other's
//! servers and connections are not in the measure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idp_common::{encode, hidden_fields, idp_config, register_client, IdpWorld, REDIRECT, USER};
use milagro_idp::Idp;
use milagro_service::http::{BODY_READ_TIMEOUT, HEAD_READ_TIMEOUT};
use milagro_service::open_connections::KEEP_ALIVE_CONNECTIONS;
use milagro_tbs::Tbs;
use milagro_tests::{tbs_config, TestNode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Held by each test for its whole run: the memory test measures the process.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Connections per service that stop after a head announcing a 1,000-byte body.
const BODY_STALLERS: usize = 400;
/// Connections per service that stop in the middle of a head.
const HEAD_STALLERS: usize = 100;
/// The longest an honest request may take while the stalled connections are held.
const HONEST_PATIENCE: Duration = Duration::from_secs(2);

/// How a stalled connection stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// After a complete head that announces `Content-Length: 1000`.
    Body,
    /// In the middle of a header line.
    Head,
}

/// Opens a connection to `addr` that sends the start of a `POST path` and stops.
fn stall(addr: SocketAddr, path: &str, content_type: &str, how: Stall) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let text = match how {
        Stall::Body => format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
             Content-Length: 1000\r\n\r\n"
        ),
        Stall::Head => format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Le"),
    };
    stream.write_all(text.as_bytes()).unwrap();
    stream
}

/// Whether the server has neither answered nor closed `stream` yet.
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let open =
        matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

/// Reads `stream` until the server closes it, at the latest at `deadline`: the status of
/// what it answered (0 for nothing), or `None` if it is still open then.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> Option<u16> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Some(status_of(&answer)),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            // A reset is the server closing too.
            Err(_) => return Some(status_of(&answer)),
        }
    }
}

/// The status code of an HTTP answer's first line (0 if there is none).
fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Holds 500 stalled connections on `addr` while `honest` (an honest request) is timed,
/// then checks the server closed them all after its deadlines. Returns the honest
/// request's slowest latency.
fn stalled_connections_are_shed(
    what: &str,
    addr: SocketAddr,
    body_route: (&str, &str),
    honest: impl Fn() -> u16,
) -> Duration {
    let baseline = Instant::now();
    assert_eq!(honest(), 200, "{what}: the honest request works");
    let unloaded = baseline.elapsed();
    let opened = Instant::now();
    let mut stalled: Vec<(Stall, TcpStream)> = Vec::new();
    for i in 0..BODY_STALLERS + HEAD_STALLERS {
        let how = if i < BODY_STALLERS {
            Stall::Body
        } else {
            Stall::Head
        };
        stalled.push((how, stall(addr, body_route.0, body_route.1, how)));
    }
    // The honest client, several times while the 500 are held.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(
            honest(),
            200,
            "{what}: an honest request among stalled ones"
        );
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < HONEST_PATIENCE,
        "{what}: the honest client waited {slowest:?} (unloaded {unloaded:?})"
    );
    // The attack was real: the stalled connections are held, not refused at once.
    let held = stalled.iter().filter(|(_, s)| still_open(s)).count();
    assert!(
        opened.elapsed() < HEAD_READ_TIMEOUT,
        "{what}: the set-up took too long to tell"
    );
    assert_eq!(
        held,
        stalled.len(),
        "{what}: every stalled connection is held before its deadline"
    );
    // And each is closed by the server after its deadline (with a margin for a loaded
    // machine), answered 408.
    let deadline = opened + BODY_READ_TIMEOUT + HEAD_READ_TIMEOUT;
    let mut answers: BTreeMap<(String, u16), usize> = BTreeMap::new();
    for (how, stream) in &mut stalled {
        let status = closed_by_server(stream, deadline).unwrap_or_else(|| {
            panic!(
                "{what}: a {how:?} staller is still open {:?} after it stalled",
                opened.elapsed()
            )
        });
        assert_eq!(status, 408, "{what}: {how:?} answered {status}");
        *answers.entry((format!("{how:?}"), status)).or_default() += 1;
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= BODY_READ_TIMEOUT,
        "{what}: the body stallers were closed by their deadline, not before ({closed_after:?})"
    );
    eprintln!(
        "{what}: honest latency unloaded {unloaded:?}, slowest with 500 stalled {slowest:?}; \
         all closed {closed_after:?} after stalling; answers {answers:?}"
    );
    slowest
}

/// Reads one answer from `stream`: its status and its head, lower-cased.
fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "the server closed before answering");
        answer.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = answer.len() - head_end;
    while body < length {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "the server closed in the middle of a body");
        body += n;
    }
    (status_of(&answer), head)
}

/// 400 connections, one after the other, each sending a quick `GET path` and then the
/// start of a second head: how many were kept alive, and that every other one was
/// closed by the server after its answer.
fn keep_alive_tricklers_are_bounded(
    what: &str,
    addr: SocketAddr,
    path: &str,
    honest: impl Fn() -> u16,
) {
    let mut kept_alive = Vec::new();
    for _ in 0..400 {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let (status, head) = read_answer(&mut stream);
        assert_eq!(status, 200, "{what}: {head}");
        if head.contains("\r\nconnection: close\r\n") {
            assert_eq!(
                closed_by_server(&mut stream, Instant::now() + Duration::from_secs(2)),
                Some(0),
                "{what}: an answer that says close is followed by the close"
            );
        } else {
            write!(stream, "GET {path} HTTP/1.1\r\nHo").unwrap();
            kept_alive.push(stream);
        }
    }
    let started = Instant::now();
    assert_eq!(
        honest(),
        200,
        "{what}: an honest request among the tricklers"
    );
    let latency = started.elapsed();
    eprintln!(
        "{what}: {} of 400 tricklers kept alive; honest latency {latency:?}",
        kept_alive.len()
    );
    assert!(latency < HONEST_PATIENCE, "{what}: {latency:?}");
    assert!(
        !kept_alive.is_empty() && kept_alive.len() <= KEEP_ALIVE_CONNECTIONS,
        "{what}: {} kept alive",
        kept_alive.len()
    );
}

#[test]
fn stalled_connections_do_not_stop_an_honest_client_and_are_closed_after_their_deadline() {
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The TBS first, then the IdP, each with the other's connections closed.
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let config = milagro_tbs::config::Config::parse(&tbs_config(
        &node.rpc_url(),
        &node.cookie(),
        &dir.path().join("tbs"),
    ))
    .unwrap();
    let tbs = Tbs::start(config).unwrap();
    let idp = Idp::start(idp_config(
        &node,
        &dir.path().join("idp"),
        idp_common::free_port(),
        "",
    ))
    .unwrap();
    let http = milagro_http_client::Outbound::system()
        .unwrap()
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let tbs_status = format!("{}/v1/status", tbs.local_url());
    let tbs_honest = || http.get(&tbs_status).send().unwrap().status().as_u16();
    stalled_connections_are_shed(
        "TBS",
        tbs.addr(),
        ("/v1/enrolments", "application/json"),
        tbs_honest,
    );
    keep_alive_tricklers_are_bounded("TBS", tbs.addr(), "/v1/status", tbs_honest);

    let jwks = format!("{}/jwks", idp.state().issuer());
    let idp_honest = || http.get(&jwks).send().unwrap().status().as_u16();
    stalled_connections_are_shed(
        "IdP",
        idp.addr(),
        ("/login", "application/x-www-form-urlencoded"),
        idp_honest,
    );
    keep_alive_tricklers_are_bounded("IdP", idp.addr(), "/jwks", idp_honest);
}

/// This process's resident set, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Samples [`rss`] every 20 ms until stopped; the highest value seen.
struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss()));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, peak, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed).max(rss())
    }
}

/// Sends `request` (which says `Connection: close`) `count` times to `addr`, at most
/// `at_once` at a time; how many answers had each status, and how many 503s lacked
/// `Retry-After`.
fn flood(
    addr: SocketAddr,
    request: &[u8],
    count: usize,
    at_once: usize,
) -> (BTreeMap<u16, usize>, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let request: Arc<[u8]> = request.into();
        let permits = Arc::new(tokio::sync::Semaphore::new(at_once));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let request = request.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(&request).await.unwrap();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).await.unwrap();
                let status = status_of(&answer);
                let head = String::from_utf8_lossy(&answer).to_lowercase();
                (
                    status,
                    status == 503 && !head.contains("\r\nretry-after: 1\r\n"),
                )
            });
        }
        let mut statuses = BTreeMap::new();
        let mut without_retry_after = 0;
        while let Some(done) = tasks.join_next().await {
            let (status, missing) = done.unwrap();
            *statuses.entry(status).or_default() += 1;
            without_retry_after += usize::from(missing);
        }
        (statuses, without_retry_after)
    })
}

const MIB: u64 = 1024 * 1024;

#[test]
fn two_thousand_wrong_passwords_at_once_keep_the_idp_under_its_memory_bound() {
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let world = IdpWorld::start("");
    let (client_id, _) = register_client(&world.issuer);
    let authorize = format!(
        "{}/authorize?{}",
        world.issuer,
        encode(
            [
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", "s"),
            ]
            .into_iter()
        )
    );
    // The login form as a browser gets it: its CSRF cookie and hidden fields, reused by
    // every attempt (the token is per browser, not per attempt).
    let page = world.http.get(&authorize).send().unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut form = hidden_fields(&page.text().unwrap());
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), "not alice's password".into()));
    let body = encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let addr = world.idp.addr();
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Cookie: {cookie}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let slots = milagro_idp::passwords::default_slots();
    let admitted = slots + milagro_idp::PASSWORD_CHECKS_QUEUED;

    // Warm: every password slot made once, as any IdP in use has them.
    let (warm, _) = flood(addr, request.as_bytes(), 4 * slots, slots);
    assert_eq!(
        warm,
        BTreeMap::from([(401, 4 * slots)]),
        "a wrong password is 401"
    );
    std::thread::sleep(Duration::from_millis(500));
    let baseline = rss();

    let sampler = PeakSampler::start();
    let started = Instant::now();
    let (burst, missing_retry) = flood(addr, request.as_bytes(), 2_000, 2_000);
    let burst_took = started.elapsed();
    // Then hundreds of checks that do run: as many at a time as the queue admits.
    let started = Instant::now();
    let (steady, _) = flood(addr, request.as_bytes(), 300, admitted);
    let steady_took = started.elapsed();
    let peak = sampler.finish();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss();

    let checked = burst.get(&401).copied().unwrap_or(0) + steady.get(&401).copied().unwrap_or(0);
    eprintln!(
        "baseline {} MiB, peak {} MiB, after {} MiB; burst {burst:?} in {burst_took:?}, \
         then {steady:?} in {steady_took:?}: {checked} password checks",
        baseline / MIB,
        peak / MIB,
        after / MIB
    );
    // Every answer is the wrong-password page or the queue's 503 (with Retry-After):
    // no 500, no dropped connection.
    assert_eq!(
        burst.keys().copied().collect::<Vec<_>>(),
        vec![401, 503],
        "{burst:?}"
    );
    assert_eq!(burst.values().sum::<usize>(), 2_000);
    assert_eq!(missing_retry, 0, "every 503 says Retry-After");
    assert_eq!(
        steady,
        BTreeMap::from([(401, 300)]),
        "as many at once as the queue admits are all checked"
    );
    // The bound of docs/idp.md: the password slots (19 MiB each, made before the
    // baseline) plus 64 MiB for connections in flight; afterwards within 32 MiB.
    let bound = 64 * MIB;
    assert!(
        peak.saturating_sub(baseline) <= bound,
        "peak {} MiB above the baseline {} MiB",
        (peak - baseline) / MIB,
        baseline / MIB
    );
    assert!(
        after.saturating_sub(baseline) <= 32 * MIB,
        "{} MiB above the baseline after the flood",
        (after - baseline) / MIB
    );
}
