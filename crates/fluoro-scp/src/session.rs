//! One association: negotiation, then C-ECHO and C-STORE requests until release or abort.
//! A C-STORE's data set is appended to `<uid>.dcm.partial` fragment by fragment, after a
//! Part 10 header built from the request, and renamed to `<uid>.dcm` when complete; an
//! interrupted transfer leaves no `.dcm` behind.

use crate::dimse::{self, Request, status};
use crate::{
    ReceivedInstance, STORAGE_CLASSES, ScpConfig, ScpError, ScpEvent, TRANSFER_SYNTAXES,
    VERIFICATION,
};
use dicom_object::FileMetaTableBuilder;
use dicom_ul::association::Association;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{Pdu, ServerAssociation, ServerAssociationOptions};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Instant;

/// A C-STORE whose data set is arriving.
struct Incoming {
    req: Request,
    context_id: u8,
    transfer_syntax: String,
    partial: PathBuf,
    file: Option<BufWriter<File>>,
    bytes: u64,
    started: Instant,
    /// Set when the instance will be refused; the rest of its data is read and discarded.
    refused: Option<(u16, String)>,
}

/// A data set that follows a request we do not serve: read and thrown away.
struct Discard {
    req: Request,
    context_id: u8,
    status: u16,
}

enum Pending {
    Store(Box<Incoming>),
    Discard(Discard),
}

fn file_name(uid: &str, seq: u64) -> String {
    let clean: String = uid
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .take(64)
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        format!("instance-{seq}")
    } else {
        clean
    }
}

fn part10_header(req: &Request, ts: &str, ae: &str) -> Result<Vec<u8>, String> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(req.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(req.sop_instance_uid.as_str())
        .transfer_syntax(ts)
        .source_application_entity_title(ae)
        .build()
        .map_err(|e| format!("file meta: {e}"))?;
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    meta.write(&mut out)
        .map_err(|e| format!("file meta: {e}"))?;
    Ok(out)
}

impl Incoming {
    fn begin(
        req: Request,
        context_id: u8,
        transfer_syntax: String,
        dir: &Path,
        peer_ae: &str,
        seq: u64,
    ) -> Self {
        let name = file_name(&req.sop_instance_uid, seq);
        let partial = dir.join(format!("{name}.dcm.partial"));
        let mut me = Self {
            req,
            context_id,
            transfer_syntax,
            partial,
            file: None,
            bytes: 0,
            started: Instant::now(),
            refused: None,
        };
        let opened = part10_header(&me.req, &me.transfer_syntax, peer_ae).and_then(|head| {
            let mut f = BufWriter::with_capacity(
                1 << 20,
                File::create(&me.partial).map_err(|e| e.to_string())?,
            );
            f.write_all(&head).map_err(|e| e.to_string())?;
            Ok(f)
        });
        match opened {
            Ok(f) => me.file = Some(f),
            Err(e) => me.refuse(
                status::OUT_OF_RESOURCES,
                format!("{}: {e}", me.partial.display()),
            ),
        }
        me
    }

    fn refuse(&mut self, code: u16, reason: String) {
        if self.refused.is_none() {
            self.refused = Some((code, reason));
        }
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }

    fn append(&mut self, data: &[u8], limit: u64) {
        self.bytes += data.len() as u64;
        if self.bytes > limit {
            self.refuse(
                status::OUT_OF_RESOURCES,
                format!("larger than the limit of {limit} bytes"),
            );
        }
        if let Some(f) = &mut self.file
            && let Err(e) = f.write_all(data)
        {
            let reason = format!("{}: {e}", self.partial.display());
            self.refuse(status::OUT_OF_RESOURCES, reason);
        }
    }

    /// Completes the file; returns the response status and the stored instance.
    fn finish(mut self, peer_ae: &str) -> (Request, u8, u16, ScpEvent) {
        let done = self.file.take().map(|f| {
            f.into_inner().map_err(|e| e.to_string()).and_then(|_| {
                let path = self.partial.with_extension("");
                std::fs::rename(&self.partial, &path).map_err(|e| e.to_string())?;
                Ok(path)
            })
        });
        let refused = match (done, self.refused.take()) {
            (Some(Ok(path)), None) => {
                let ev = ScpEvent::Stored(ReceivedInstance {
                    path,
                    sop_class_uid: self.req.sop_class_uid.clone(),
                    sop_instance_uid: self.req.sop_instance_uid.clone(),
                    transfer_syntax: self.transfer_syntax,
                    calling_ae_title: peer_ae.to_string(),
                    bytes: self.bytes,
                    started: self.started,
                    completed: Instant::now(),
                });
                return (self.req, self.context_id, status::SUCCESS, ev);
            }
            (Some(Err(e)), None) => {
                let _ = std::fs::remove_file(&self.partial);
                (status::OUT_OF_RESOURCES, e)
            }
            (_, Some(r)) => r,
            (None, None) => (status::OUT_OF_RESOURCES, "not written".into()),
        };
        let ev = ScpEvent::Refused {
            sop_instance_uid: self.req.sop_instance_uid.clone(),
            reason: refused.1,
        };
        (self.req, self.context_id, refused.0, ev)
    }

    fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn options(
    config: &ScpConfig,
) -> ServerAssociationOptions<
    'static,
    dicom_ul::association::server::AcceptAny,
    dicom_ul::association::server::DefaultNegotiation,
> {
    let mut o = ServerAssociationOptions::new()
        .accept_any()
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu_length)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout)
        .with_abstract_syntax(VERIFICATION);
    for c in STORAGE_CLASSES {
        o = o.with_abstract_syntax(*c);
    }
    for ts in TRANSFER_SYNTAXES {
        o = o.with_transfer_syntax(*ts);
    }
    o
}

fn respond(
    assoc: &mut ServerAssociation<TcpStream>,
    req: &Request,
    context_id: u8,
    code: u16,
) -> Result<(), String> {
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context_id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: dimse::encode_response(req, code),
        }],
    };
    assoc
        .send(&pdu)
        .map_err(|e| format!("sending a response: {e}"))
}

/// Serves one association to its end.
pub(crate) fn run(
    stream: TcpStream,
    peer: &str,
    config: &ScpConfig,
    events: &Sender<ScpEvent>,
) -> Result<(), ScpError> {
    let fail = |peer: &str, detail: String| ScpError::Association {
        peer: peer.to_string(),
        detail,
    };
    let mut assoc = options(config)
        .establish(stream)
        .map_err(|e| fail(peer, format!("negotiation failed: {e}")))?;
    let peer = format!("{} ({peer})", assoc.peer_ae_title().trim());
    let peer_ae = assoc.peer_ae_title().trim().to_string();
    let mut command = Vec::new();
    let mut pending: Option<Pending> = None;
    let mut seq = 0u64;
    let outcome = loop {
        let pdu = match assoc.receive() {
            Ok(p) => p,
            Err(e) => break Err(format!("connection lost: {e}")),
        };
        match pdu {
            Pdu::PData { data } => {
                if let Err(e) = on_pdata(
                    &mut assoc,
                    data,
                    &mut command,
                    &mut pending,
                    &mut seq,
                    config,
                    &peer_ae,
                    events,
                ) {
                    let _ = assoc.send(&Pdu::AbortRQ {
                        source: dicom_ul::pdu::AbortRQSource::ServiceProvider(
                            dicom_ul::pdu::AbortRQServiceProviderReason::UnexpectedPdu,
                        ),
                    });
                    break Err(e);
                }
            }
            Pdu::ReleaseRQ => {
                let _ = assoc.send(&Pdu::ReleaseRP);
                break Ok(());
            }
            Pdu::AbortRQ { .. } => break Err("aborted by the sender".into()),
            other => break Err(format!("unexpected {}", other.short_description())),
        }
    };
    if let Some(Pending::Store(inc)) = pending {
        let _ = events.send(ScpEvent::Refused {
            sop_instance_uid: inc.req.sop_instance_uid.clone(),
            reason: "association ended before the instance was complete".into(),
        });
        inc.abandon();
    }
    outcome.map_err(|d| fail(&peer, d))
}

#[allow(clippy::too_many_arguments)]
fn on_pdata(
    assoc: &mut ServerAssociation<TcpStream>,
    data: Vec<PDataValue>,
    command: &mut Vec<u8>,
    pending: &mut Option<Pending>,
    seq: &mut u64,
    config: &ScpConfig,
    peer_ae: &str,
    events: &Sender<ScpEvent>,
) -> Result<(), String> {
    for pdv in data {
        match pdv.value_type {
            PDataValueType::Command => {
                if pending.is_some() {
                    return Err("a command arrived while a data set was still expected".into());
                }
                command.extend_from_slice(&pdv.data);
                if command.len() > 1 << 16 {
                    return Err("command set larger than 64 KiB".into());
                }
                if !pdv.is_last {
                    continue;
                }
                let req = dimse::parse_request(command)?;
                command.clear();
                *pending = on_request(
                    assoc,
                    req,
                    pdv.presentation_context_id,
                    seq,
                    config,
                    peer_ae,
                )?;
            }
            PDataValueType::Data => {
                let Some(p) = pending.as_mut() else {
                    return Err("a data fragment arrived without a command".into());
                };
                match p {
                    Pending::Store(inc) => {
                        if inc.context_id != pdv.presentation_context_id {
                            return Err("data on another presentation context".into());
                        }
                        inc.append(&pdv.data, config.max_instance_bytes);
                    }
                    Pending::Discard(_) => {}
                }
                if !pdv.is_last {
                    continue;
                }
                match pending.take().expect("checked above") {
                    Pending::Store(inc) => {
                        let (req, ctx, code, ev) = inc.finish(peer_ae);
                        // answer first: the sender is waiting; the event is for us
                        respond(assoc, &req, ctx, code)?;
                        let _ = events.send(ev);
                    }
                    Pending::Discard(d) => respond(assoc, &d.req, d.context_id, d.status)?,
                }
            }
        }
    }
    Ok(())
}

/// Refuses `req` with `code`: at once when no data set follows, else once its data set has
/// been read and thrown away.
fn refuse(
    assoc: &mut ServerAssociation<TcpStream>,
    req: Request,
    context_id: u8,
    status: u16,
) -> Result<Option<Pending>, String> {
    if req.has_data_set {
        Ok(Some(Pending::Discard(Discard {
            req,
            context_id,
            status,
        })))
    } else {
        respond(assoc, &req, context_id, status)?;
        Ok(None)
    }
}

fn on_request(
    assoc: &mut ServerAssociation<TcpStream>,
    req: Request,
    context_id: u8,
    seq: &mut u64,
    config: &ScpConfig,
    peer_ae: &str,
) -> Result<Option<Pending>, String> {
    let context = assoc
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == context_id)
        .map(|pc| (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()));
    let Some((abstract_syntax, transfer_syntax)) = context else {
        return Err(format!(
            "request on unknown presentation context {context_id}"
        ));
    };
    match req.command {
        dimse::C_ECHO_RQ => {
            respond(assoc, &req, context_id, status::SUCCESS)?;
            Ok(None)
        }
        dimse::C_STORE_RQ if req.has_data_set => {
            let class_ok = abstract_syntax.trim_end_matches('\0') == req.sop_class_uid;
            if !class_ok || req.sop_instance_uid.is_empty() {
                let code = if class_ok {
                    status::CANNOT_UNDERSTAND
                } else {
                    status::SOP_CLASS_NOT_SUPPORTED
                };
                return refuse(assoc, req, context_id, code);
            }
            *seq += 1;
            Ok(Some(Pending::Store(Box::new(Incoming::begin(
                req,
                context_id,
                transfer_syntax,
                &config.store_dir,
                peer_ae,
                *seq,
            )))))
        }
        _ => {
            let code = if req.command == dimse::C_STORE_RQ {
                status::CANNOT_UNDERSTAND
            } else {
                status::UNRECOGNIZED_OPERATION
            };
            refuse(assoc, req, context_id, code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_keep_only_uid_characters() {
        assert_eq!(file_name("1.2.840.5", 1), "1.2.840.5");
        assert_eq!(file_name("../../etc/passwd", 3), "instance-3");
        assert_eq!(file_name("", 4), "instance-4");
        assert_eq!(file_name("..", 5), "instance-5");
    }
}
