//! A minimal Storage SCU: the sending side, used by `fluoro send` to stand in for a C-arm
//! that pushes every frame as it is acquired (and by tests). One association, C-STORE
//! requests in turn, each answered before the next.

use crate::ScpError;
use crate::dimse::{C_STORE_RQ, encode_request};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// An open association to a Storage SCP.
pub struct StoreScu {
    assoc: ClientAssociation<TcpStream>,
    peer: String,
    next_message_id: u16,
}

impl StoreScu {
    /// Connects to `addr` (`host:port`) calling AE `called` as `calling`, proposing each
    /// `(SOP class, transfer syntaxes)` pair as a presentation context.
    pub fn connect(
        addr: &str,
        calling: &str,
        called: &str,
        contexts: &[(&str, &[&str])],
    ) -> Result<Self, ScpError> {
        let mut o = ClientAssociationOptions::new()
            .calling_ae_title(calling.to_string())
            .called_ae_title(called.to_string())
            .read_timeout(Duration::from_secs(30))
            .write_timeout(Duration::from_secs(30))
            .max_pdu_length(1 << 20);
        for (class, ts) in contexts {
            o = o.with_presentation_context(
                class.to_string(),
                ts.iter().map(|t| t.to_string()).collect(),
            );
        }
        let mut assoc = o.establish_with(addr).map_err(|e| ScpError::Association {
            peer: addr.to_string(),
            detail: e.to_string(),
        })?;
        assoc.inner_stream().set_nodelay(true).ok();
        Ok(Self {
            assoc,
            peer: addr.to_string(),
            next_message_id: 1,
        })
    }

    fn fail(&self, detail: impl std::fmt::Display) -> ScpError {
        ScpError::Association {
            peer: self.peer.clone(),
            detail: detail.to_string(),
        }
    }

    /// Sends one instance's data set (encoded in `transfer_syntax`) and returns the SCP's
    /// status (0 = success).
    pub fn store(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        data_set: &[u8],
    ) -> Result<u16, ScpError> {
        let pc = self
            .assoc
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.abstract_syntax.trim_end_matches('\0') == sop_class
                    && pc.transfer_syntax.trim_end_matches('\0') == transfer_syntax
            })
            .map(|pc| pc.id)
            .ok_or_else(|| {
                self.fail(format!(
                    "no accepted presentation context for {sop_class} in {transfer_syntax}"
                ))
            })?;
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        let command = encode_request(C_STORE_RQ, id, sop_class, sop_instance);
        self.assoc
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: command,
                }],
            })
            .map_err(|e| self.fail(e))?;
        {
            let mut w = self.assoc.send_pdata(pc);
            w.write_all(data_set)
                .and_then(|_| w.finish())
                .map_err(|e| ScpError::Association {
                    peer: self.peer.clone(),
                    detail: format!("sending data: {e}"),
                })?;
        }
        let reply = self.assoc.receive().map_err(|e| self.fail(e))?;
        let Pdu::PData { data } = reply else {
            return Err(self.fail(format!(
                "expected C-STORE-RSP, got {}",
                reply.short_description()
            )));
        };
        let bytes: Vec<u8> = data.into_iter().flat_map(|v| v.data).collect();
        let rsp = InMemDicomObject::read_dataset_with_ts(
            bytes.as_slice(),
            &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .map_err(|e| self.fail(format!("unreadable response: {e}")))?;
        rsp.element(Tag(0x0000, 0x0900))
            .ok()
            .and_then(|e| e.to_int::<u16>().ok())
            .ok_or_else(|| self.fail("response without a status"))
    }

    /// Releases the association.
    pub fn release(self) -> Result<(), ScpError> {
        let peer = self.peer.clone();
        self.assoc.release().map_err(|e| ScpError::Association {
            peer,
            detail: format!("release: {e}"),
        })
    }
}
