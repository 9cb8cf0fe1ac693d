//! One runtime thread's loops: its SO_REUSEPORT listener, accept loop, event fan-out and
//! shutdown drain.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::LocalSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::events::Generator;
use crate::hub::Batch;
use crate::proto::Proto;
use crate::worker::{Mode, Shared, Worker};
use crate::{conn, Fault};

/// How long a graceful shutdown waits for connections to finish their closing handshakes.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_millis(4500);

/// Binds a listener that shares its address with the other runtimes' listeners.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Everything one runtime thread starts with.
pub(crate) struct Start {
    pub index: usize,
    pub shared: Arc<Shared>,
    pub listener: std::net::TcpListener,
    pub runtime: Runtime,
    pub mode: watch::Receiver<Mode>,
    pub events: UnboundedReceiver<Batch>,
    pub generator: Option<Generator>,
}

/// Runs one runtime until shutdown; returns after the drain (graceful) or at once (kill).
pub(crate) fn run(start: Start) {
    let Start {
        index,
        shared,
        listener,
        runtime,
        mode,
        events,
        generator,
    } = start;
    let config = &shared.config;
    let ws_configs = Proto::ALL.map(|proto| {
        let limit = config.message_limit(proto);
        // Small read buffers keep idle connections cheap; the write buffer may hold a
        // batch plus one echoed maximum-size message before writes apply backpressure.
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(64 * 1024)
            .max_write_buffer_size(128 * 1024 + 2 * limit)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit))
    });
    let worker = Rc::new(Worker::new(index, shared.clone(), mode, ws_configs));
    let local = LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return eprintln!("squall-server: runtime {index}: {e}"),
        };
        tokio::task::spawn_local(dispatch(worker.clone(), events));
        if let Some(generator) = generator {
            tokio::task::spawn_local(generator.run());
        }
        let mode = accept(&worker, listener).await;
        worker.stop_all();
        if mode == Mode::Graceful {
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, worker.drained()).await;
        }
    });
    // Dropping the LocalSet inside the runtime drops every remaining task and socket.
    let _guard = runtime.enter();
    drop(local);
}

/// Accepts until the mode leaves `Running`; returns the new mode.
async fn accept(worker: &Rc<Worker>, listener: TcpListener) -> Mode {
    let mut mode = worker.mode.clone();
    loop {
        tokio::select! {
            biased;
            changed = mode.changed() => {
                if changed.is_err() {
                    return Mode::Kill;
                }
                let now = *mode.borrow_and_update();
                if now != Mode::Running {
                    return now;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::task::spawn_local(conn::serve(worker.clone(), stream));
                }
                // Out of file descriptors or similar: back off instead of spinning, so
                // the connections already open keep being served.
                Err(e) => {
                    worker.shared.hub.count(None, "accept_errors", "", 1);
                    tracing::warn!(error = %e, "accept failed; backing off 20 ms");
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
            },
        }
    }
}

/// Fans each generated batch out to this runtime's subscribers.
async fn dispatch(worker: Rc<Worker>, mut events: UnboundedReceiver<Batch>) {
    let fault = worker.shared.config.fault;
    let mut nth = 0u64;
    while let Some(batch) = events.recv().await {
        let mut rooms = worker.rooms.borrow_mut();
        for (room, text) in batch.frames.iter() {
            nth += 1;
            let copies = match fault {
                Some(Fault::DropEvents(n)) if nth.is_multiple_of(n) => 0,
                Some(Fault::DuplicateEvents(n)) if nth.is_multiple_of(n) => 2,
                _ => 1,
            };
            for _ in 0..copies {
                // Slow consumers dropped from the room no longer count as its audience.
                for _ in 0..rooms.publish(room, batch.stamp, text) {
                    worker.shared.hub.leave(room);
                }
            }
        }
    }
}
