//! A DICOM Storage SCP: accepts associations from any standard sender (a C-arm, a PACS
//! router, DCMTK's `storescu`), answers C-ECHO, and spools every C-STORE'd instance to a
//! file as its fragments arrive (so a 1 GB run never sits in memory), then reports it on a
//! channel. The live loop opens the spooled file like any recorded study.
//!
//! Accepted: the X-ray angiography / radiofluoroscopy, secondary capture, CR and DX storage
//! classes, in any transfer syntax the reader decodes. One thread per association, at most
//! [`ScpConfig::max_associations`] at once; every socket has a read timeout so a silent
//! peer cannot hold a thread forever.

pub mod dimse;
pub mod scu;
mod session;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors of the receiver.
#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The spool folder could not be created.
    #[error("cannot create the receive folder {path}: {source}")]
    StoreDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Association negotiation or the connection failed.
    #[error("association with {peer}: {detail}")]
    Association {
        /// The peer's address (and AE title once known).
        peer: String,
        /// What went wrong.
        detail: String,
    },
}

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// Storage SOP classes accepted: the ones a fluoroscopy pipeline can use.
pub const STORAGE_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.12.1",   // X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.12.1.1", // Enhanced XA Image
    "1.2.840.10008.5.1.4.1.1.12.2",   // X-Ray Radiofluoroscopic Image
    "1.2.840.10008.5.1.4.1.1.12.2.1", // Enhanced XRF Image
    "1.2.840.10008.5.1.4.1.1.7",      // Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.2",    // Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",    // Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.1",      // Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",    // Digital X-Ray Image, for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  // Digital X-Ray Image, for processing
];

/// Transfer syntaxes accepted (all decoded by `fluoro-dicom`); the sender's order of
/// preference decides among them.
pub const TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.51", // JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
];

/// Settings of the receiver.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title (senders may call any title; it is reported, not enforced).
    pub ae_title: String,
    /// Where received instances are written (`<SOP Instance UID>.dcm`).
    pub store_dir: PathBuf,
    /// Largest PDU we accept; senders split data to fit.
    pub max_pdu_length: u32,
    /// A peer silent this long loses its association.
    pub timeout: Duration,
    /// Instances larger than this are refused (status A700) and not kept.
    pub max_instance_bytes: u64,
    /// Associations served at once; further connections are closed at once.
    pub max_associations: usize,
}

impl ScpConfig {
    /// Defaults: AE title `FLUORO`, 1 MiB PDUs, 30 s timeout, 4 GiB per instance, 4
    /// associations.
    pub fn new(store_dir: impl Into<PathBuf>) -> Self {
        Self {
            ae_title: "FLUORO".into(),
            store_dir: store_dir.into(),
            max_pdu_length: 1 << 20,
            timeout: Duration::from_secs(30),
            max_instance_bytes: 4 << 30,
            max_associations: 4,
        }
    }
}

/// An instance written to the spool folder.
#[derive(Debug, Clone)]
pub struct ReceivedInstance {
    /// The complete Part 10 file.
    pub path: PathBuf,
    /// SOP Class UID from the C-STORE request.
    pub sop_class_uid: String,
    /// SOP Instance UID from the C-STORE request.
    pub sop_instance_uid: String,
    /// Transfer syntax of the data set (the presentation context's).
    pub transfer_syntax: String,
    /// The sender's AE title.
    pub calling_ae_title: String,
    /// Bytes of the data set.
    pub bytes: u64,
    /// When the request's command arrived.
    pub started: Instant,
    /// When its last fragment arrived (frames count their latency from here).
    pub completed: Instant,
}

/// What the receiver reports.
#[derive(Debug, Clone)]
pub enum ScpEvent {
    /// An instance was received and written.
    Stored(ReceivedInstance),
    /// An instance was refused (too large, not writable) or lost with its association.
    Refused {
        /// The SOP Instance UID, when known.
        sop_instance_uid: String,
        /// Why.
        reason: String,
    },
    /// An association ended with an error (the instances stored before it stay stored).
    Failed(String),
}

/// A bound, not yet serving receiver (bind first, so a caller can print the port it got).
pub struct StoreScp {
    listener: TcpListener,
    config: Arc<ScpConfig>,
}

impl StoreScp {
    /// Binds `addr` (port 0 picks a free one) and creates the spool folder.
    pub fn bind(addr: &str, config: ScpConfig) -> Result<Self, ScpError> {
        std::fs::create_dir_all(&config.store_dir).map_err(|e| ScpError::StoreDir {
            path: config.store_dir.clone(),
            source: e,
        })?;
        let listener = TcpListener::bind(addr).map_err(|e| ScpError::Bind {
            addr: addr.to_string(),
            source: e,
        })?;
        Ok(Self {
            listener,
            config: Arc::new(config),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves associations on a background thread until [`ScpHandle::stop`], sending events
    /// to `events` (a closed channel does not stop the receiver: instances are still stored).
    pub fn spawn(self, events: Sender<ScpEvent>) -> ScpHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = self.local_addr();
        let active = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("dicom-scp".into())
                .spawn(move || accept_loop(self, &stop, &active, &events))
                .expect("spawn the receiver thread")
        };
        ScpHandle {
            stop,
            addr,
            thread: Some(thread),
        }
    }
}

fn accept_loop(
    scp: StoreScp,
    stop: &AtomicBool,
    active: &Arc<AtomicUsize>,
    events: &Sender<ScpEvent>,
) {
    for conn in scp.listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                let _ = events.send(ScpEvent::Failed(format!("accept: {e}")));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "unknown peer".into());
        if active.load(Ordering::Acquire) >= scp.config.max_associations {
            let _ = events.send(ScpEvent::Failed(format!(
                "{peer}: refused, {} associations already open",
                scp.config.max_associations
            )));
            drop(stream);
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let (config, events, counter) = (scp.config.clone(), events.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("dicom-association".into())
            .spawn(move || {
                if let Err(e) = serve(stream, &peer, &config, &events) {
                    let _ = events.send(ScpEvent::Failed(e.to_string()));
                }
                counter.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn serve(
    stream: TcpStream,
    peer: &str,
    config: &ScpConfig,
    events: &Sender<ScpEvent>,
) -> Result<(), ScpError> {
    stream.set_nodelay(true).ok();
    session::run(stream, peer, config, events)
}

/// A running receiver; stops (and joins its accept thread) on [`ScpHandle::stop`] or drop.
pub struct ScpHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl ScpHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting new associations (open ones finish on their own).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // wake the blocking accept with a connection of our own
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ScpHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
