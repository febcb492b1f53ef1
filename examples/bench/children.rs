//! The child processes: the receiver, and the SSE clients. Each is this same
//! binary started with a flag; it prints one line saying it is ready, and is
//! killed when its `Child` guard is dropped.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running child, killed on drop.
pub struct Child {
    process: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    pub port: u16,
}

impl Child {
    pub fn spawn(args: &[&str]) -> std::io::Result<Child> {
        let mut process = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = process
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Child {
            process,
            lines: BufReader::new(stdout).lines(),
            port: 0,
        })
    }

    /// The next line the child printed.
    pub fn read_line(&mut self) -> std::io::Result<String> {
        self.lines
            .next()
            .unwrap_or_else(|| Err(std::io::Error::other("child exited")))
    }

    /// Starts the receiver and waits for its port.
    pub fn receiver() -> std::io::Result<Child> {
        let mut child = Child::spawn(&["--receiver"])?;
        let line = child.read_line()?;
        child.port = line.trim().parse().map_err(std::io::Error::other)?;
        Ok(child)
    }

    /// Starts `clients` SSE clients, spread over `urls`; waits until all
    /// are connected.
    pub fn sse_clients(urls: &[String], clients: usize, events: usize) -> std::io::Result<Child> {
        let mut child = Child::spawn(&[
            "--sse-clients",
            &urls.join(","),
            &clients.to_string(),
            &events.to_string(),
        ])?;
        let line = child.read_line()?;
        if line.trim() != "connected" {
            return Err(std::io::Error::other(format!("SSE clients: {line}")));
        }
        Ok(child)
    }

    /// Runs `args` in a fresh process and collects the rows it prints,
    /// echoing its other lines, until it prints `done`.
    pub fn rows(args: &[&str]) -> std::io::Result<Vec<crate::measure::Row>> {
        let mut child = Child::spawn(args)?;
        let mut rows = Vec::new();
        loop {
            let line = child.read_line()?;
            match crate::measure::Row::from_line(&line) {
                Some(row) => rows.push(row),
                None if line == "done" => return Ok(rows),
                None => println!("{line}"),
            }
        }
    }
}

impl Child {
    /// Runs the million-stored scenario in a fresh process, so that what
    /// earlier scenarios left in this one's memory does not blur its figure.
    pub fn million_stored(url: &str, events: usize) -> std::io::Result<Vec<crate::measure::Row>> {
        Child::rows(&["--million-stored", url, &events.to_string()])
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `--receiver`: answers 200 to everything, after reading the body.
pub fn run_receiver() -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async {
        let server = HttpServer::new(|| {
            App::new().default_service(web::to(|_body: web::Bytes| async {
                HttpResponse::Ok().finish()
            }))
        })
        .workers(1)
        .backlog(4096)
        .bind(("127.0.0.1", 0))?;
        let port = server.addrs()[0].port();
        let server = server.run();
        println!("{port}");
        std::io::stdout().flush()?;
        // The parent kills us; stop also if it dies (stdin closes).
        std::thread::spawn(|| {
            let _ = std::io::stdin().read_line(&mut String::new());
            std::process::exit(0);
        });
        server.await
    })
}

/// `--sse-clients <url,url,…> <n> <events>`: opens n connections (round
/// robin over the urls), prints
/// `connected`, then for each of `events` events prints
/// `latencies <nanos> <nanos> …` (arrival minus the `t` in the event's data).
pub fn run_sse_clients() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (url, clients, events) = (
        args[2].clone(),
        args[3].parse().unwrap_or(1),
        args[4].parse().unwrap_or(1),
    );
    // Two threads, so reading 10,000 sockets is not itself the bottleneck.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(sse_clients(url, clients, events))
}

async fn sse_clients(urls: String, clients: usize, events: usize) -> std::io::Result<()> {
    // each url is http://host:port/path
    let targets: Vec<(String, String)> = urls
        .split(',')
        .map(|url| {
            let without_scheme = url.trim_start_matches("http://");
            let (host, path) = without_scheme
                .split_once('/')
                .unwrap_or((without_scheme, ""));
            let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            (host.to_owned(), request)
        })
        .collect();
    let (sender, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<(usize, u128)>();
    let mut sockets = Vec::with_capacity(clients);
    for (host, request) in targets.iter().cycle().take(clients) {
        let mut socket = tokio::net::TcpStream::connect(host).await?;
        socket.write_all(request.as_bytes()).await?;
        sockets.push(socket);
    }
    // Read each response head, so "connected" means subscribed.
    for socket in &mut sockets {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await? == 0 {
                return Err(std::io::Error::other("SSE server closed a connection"));
            }
            head.push(byte[0]);
        }
    }
    for socket in sockets {
        let sender = sender.clone();
        tokio::spawn(read_events(socket, sender));
    }
    println!("connected");
    std::io::stdout().flush()?;
    for event in 0..events {
        let mut latencies = Vec::with_capacity(clients);
        while latencies.len() < clients {
            match tokio::time::timeout(Duration::from_secs(60), arrivals.recv()).await {
                Ok(Some((index, nanos))) if index == event => latencies.push(nanos),
                Ok(Some(_)) => {}
                _ => {
                    return Err(std::io::Error::other(
                        "SSE event did not reach every client",
                    ))
                }
            }
        }
        let line: Vec<String> = latencies.iter().map(|n| n.to_string()).collect();
        println!("latencies {}", line.join(" "));
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// Reads frames; for each `data: {"i":<index>,"t":"<nanos>"}` sends (index,
/// latency). The arrival time is taken as soon as `read` returns, and the
/// fields are found by plain string search: the measuring side stays light.
async fn read_events(
    mut socket: tokio::net::TcpStream,
    arrivals: tokio::sync::mpsc::UnboundedSender<(usize, u128)>,
) {
    let mut buffer = vec![0u8; 4096];
    let mut pending = String::new();
    loop {
        let n = match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        pending.push_str(&String::from_utf8_lossy(&buffer[..n]));
        while let Some(start) = pending.find("data: ") {
            let Some(end) = pending[start..].find('\n') else {
                break;
            };
            let data = &pending[start + 6..start + end];
            let field = |name: &str| {
                let from = data.find(name)? + name.len();
                let digits: String = data[from..]
                    .chars()
                    .skip_while(|c| *c == '"')
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse::<u128>().ok()
            };
            if let (Some(index), Some(sent)) = (field("\"i\":"), field("\"t\":")) {
                let _ = arrivals.send((index as usize, now.saturating_sub(sent)));
            }
            pending.drain(..start + end);
        }
    }
}
