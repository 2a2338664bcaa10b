//! The few DIMSE messages a Storage SCP exchanges: parsing a request's command set and
//! encoding the response. Command sets are always Implicit VR Little Endian (PS3.7 6.3.1).

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

/// Command Field of C-STORE-RQ.
pub const C_STORE_RQ: u16 = 0x0001;
/// Command Field of C-ECHO-RQ.
pub const C_ECHO_RQ: u16 = 0x0030;
/// Command Data Set Type meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// DIMSE status codes used in responses (PS3.7 annex C, PS3.4 B.2.3).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (disk full, instance larger than allowed).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: the SOP class is not supported on this presentation context.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Error: cannot understand (missing or malformed command elements).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// The operation is not one this SCP provides.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// The fields of a request command set this SCP looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Command Field (0000,0100).
    pub command: u16,
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002), without padding.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID (0000,1000), without padding; empty for C-ECHO.
    pub sop_instance_uid: String,
    /// True when a data set follows the command.
    pub has_data_set: bool,
}

fn trim_uid(s: &str) -> String {
    s.trim_end_matches(['\0', ' ']).to_string()
}

/// Parses a request command set; the error says which element is missing or malformed.
pub fn parse_request(bytes: &[u8]) -> Result<Request, String> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts)
        .map_err(|e| format!("unreadable command set: {e}"))?;
    let uint = |tag, name: &str| -> Result<u16, String> {
        obj.element(tag)
            .map_err(|_| format!("command set lacks {name}"))?
            .to_int::<u16>()
            .map_err(|e| format!("{name} is not an integer: {e}"))
    };
    let text = |tag| -> String {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| trim_uid(&s)))
            .unwrap_or_default()
    };
    let command = uint(tags::COMMAND_FIELD, "Command Field")?;
    let message_id = uint(tags::MESSAGE_ID, "Message ID")?;
    let data_set_type = uint(tags::COMMAND_DATA_SET_TYPE, "Command Data Set Type")?;
    Ok(Request {
        command,
        message_id,
        sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID),
        sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID),
        has_data_set: data_set_type != NO_DATA_SET,
    })
}

/// Encodes a request command set (medium priority; a data set follows for C-STORE).
pub fn encode_request(
    command: u16,
    message_id: u16,
    sop_class: &str,
    sop_instance: &str,
) -> Vec<u8> {
    let data_set_type = if command == C_STORE_RQ {
        0x0000
    } else {
        NO_DATA_SET
    };
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(command)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(data_set_type),
        ),
    ];
    if command == C_STORE_RQ {
        elements.push(DataElement::new(
            tags::PRIORITY,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    if !sop_instance.is_empty() {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(sop_instance),
        ));
    }
    write_command(elements)
}

fn write_command(elements: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
    let obj = InMemDicomObject::command_from_element_iter(elements);
    let mut out = Vec::with_capacity(160);
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("writing a command set to memory cannot fail");
    out
}

/// Encodes the response to `req` with `status` (Command Field = request's | 0x8000).
pub fn encode_response(req: &Request, status: u16) -> Vec<u8> {
    let mut elements = vec![
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(req.command | 0x8000),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(req.message_id),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(NO_DATA_SET),
        ),
        DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)),
    ];
    if !req.sop_class_uid.is_empty() {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(req.sop_class_uid.as_str()),
        ));
    }
    if !req.sop_instance_uid.is_empty() {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(req.sop_instance_uid.as_str()),
        ));
    }
    write_command(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_bytes(command: u16) -> Vec<u8> {
        encode_request(command, 7, "1.2.840.10008.5.1.4.1.1.12.1\0", "1.2.3.4")
    }

    #[test]
    fn parses_a_store_request_and_answers_it() {
        let req = parse_request(&request_bytes(C_STORE_RQ)).unwrap();
        assert_eq!(req.command, C_STORE_RQ);
        assert_eq!(req.message_id, 7);
        assert_eq!(req.sop_class_uid, "1.2.840.10008.5.1.4.1.1.12.1");
        assert_eq!(req.sop_instance_uid, "1.2.3.4");
        assert!(req.has_data_set);
        let rsp = encode_response(&req, status::SUCCESS);
        let back = InMemDicomObject::read_dataset_with_ts(
            rsp.as_slice(),
            &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .unwrap();
        let int = |t| back.element(t).unwrap().to_int::<u32>().unwrap();
        assert_eq!(int(tags::COMMAND_FIELD), 0x8001);
        assert_eq!(int(tags::MESSAGE_ID_BEING_RESPONDED_TO), 7);
        assert_eq!(int(tags::STATUS), 0);
        // the group length counts every byte after itself
        assert_eq!(int(tags::COMMAND_GROUP_LENGTH) as usize, rsp.len() - 12);
    }

    #[test]
    fn a_command_without_required_fields_is_an_error_not_a_panic() {
        assert!(parse_request(&[]).is_err());
        assert!(parse_request(&[0xff; 7]).is_err());
        let mut b = request_bytes(C_ECHO_RQ);
        b.truncate(b.len() / 2);
        assert!(parse_request(&b).is_err());
    }
}
