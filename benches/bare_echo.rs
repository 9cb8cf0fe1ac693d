//! `bare-echo`: the tuned bare tokio-tungstenite echo server squall-server is measured
//! against: 4 KiB read buffers, batched writes (feed every ready message, flush once), and
//! either one current-thread runtime per core on SO_REUSEPORT listeners (`per-core`) or one
//! multi-thread runtime (`multi`). Loopback only; runs until killed.

// Cargo also discovers this file as a libtest bench target, where `main` is unused.
#![cfg_attr(test, allow(dead_code))]

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Most ready messages echoed before one flush.
const BATCH: usize = 64;

#[derive(Parser, Debug)]
#[command(name = "bare-echo", about = "Baseline tokio-tungstenite echo server")]
struct Args {
    /// Loopback address to listen on; port 0 picks one (printed as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// `per-core`: a current-thread runtime per thread, each with its own SO_REUSEPORT
    /// listener; `multi`: one multi-thread runtime with one listener.
    #[arg(long, default_value = "per-core", value_parser = ["per-core", "multi"])]
    runtime: String,
    /// Threads [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!("bare-echo: loopback addresses only");
        return ExitCode::from(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match run(&args, threads.max(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn run(args: &Args, threads: usize) -> std::io::Result<()> {
    let first = bind(args.listen)?;
    let addr = first.local_addr()?;
    println!("listening on {addr}");
    if args.runtime == "multi" {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?;
        return rt.block_on(accept(first));
    }
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind(addr)?);
    }
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            std::thread::spawn(move || -> std::io::Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(accept(listener))
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| std::io::Error::other("thread panicked"))??;
    }
    Ok(())
}

async fn accept(listener: std::net::TcpListener) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(echo(stream));
    }
}

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    while let Some(first) = ws.next().await {
        let mut next = Some(Some(first));
        let mut handled = 0;
        while let Some(Some(item)) = next {
            match item {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.feed(msg).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
            handled += 1;
            next = if handled < BATCH {
                ws.next().now_or_never()
            } else {
                None
            };
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}
