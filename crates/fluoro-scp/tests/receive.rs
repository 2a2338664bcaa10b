//! The receiver driven by real senders: our SCU and dicom-rs's client (always) and DCMTK's `storescu` /
//! `echoscu` (when installed; `FLUORO_REQUIRE_DCMTK=1`, set by CI, makes their absence a
//! failure). Checks that stored files are the sent data set byte for byte, that bad peers
//! get errors and leave no files, and that the receiver keeps serving afterwards.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use fluoro_scp::scu::StoreScu;
use fluoro_scp::{ScpConfig, ScpEvent, ScpHandle, StoreScp};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const XA: &str = "1.2.840.10008.5.1.4.1.1.12.1";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fluoro-scp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn start(name: &str) -> (ScpHandle, Receiver<ScpEvent>, PathBuf) {
    let dir = scratch(name);
    let mut cfg = ScpConfig::new(&dir);
    cfg.timeout = Duration::from_secs(5);
    let scp = StoreScp::bind("127.0.0.1:0", cfg).unwrap();
    let (tx, rx) = channel();
    (scp.spawn(tx), rx, dir)
}

/// The data set of a Part 10 file (everything after the file meta group).
fn data_set(file: &Path) -> Vec<u8> {
    let b = std::fs::read(file).unwrap();
    assert_eq!(&b[128..132], b"DICM");
    let group_len = u32::from_le_bytes(b[140..144].try_into().unwrap()) as usize;
    b[144 + group_len..].to_vec()
}

fn store_command(message_id: u16, class: &str, instance: &str) -> Vec<u8> {
    fluoro_scp::dimse::encode_request(fluoro_scp::dimse::C_STORE_RQ, message_id, class, instance)
}

fn response_status(pdu: Pdu) -> u16 {
    let Pdu::PData { data } = pdu else {
        panic!("expected a response, got {pdu:?}")
    };
    let obj = InMemDicomObject::read_dataset_with_ts(
        data[0].data.as_slice(),
        &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
    )
    .unwrap();
    obj.element(tags::STATUS).unwrap().to_int().unwrap()
}

/// Same frame count and the same decoded values in every frame.
fn same_frames(a: &fluoro_dicom::Study, b: &fluoro_dicom::Study) -> bool {
    let (mut fa, mut fb) = (fluoro_core::Frame::new(0, 0), fluoro_core::Frame::new(0, 0));
    a.frame_count() == b.frame_count()
        && (0..a.frame_count()).all(|i| {
            a.frame(i).unwrap().write_f32(&mut fa);
            b.frame(i).unwrap().write_f32(&mut fb);
            fa.size() == fb.size() && fa.data() == fb.data()
        })
}

fn next_event(rx: &Receiver<ScpEvent>) -> ScpEvent {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

#[test]
fn a_dicom_rs_client_stores_a_study_byte_for_byte() {
    let (scp, rx, dir) = start("client");
    let src = repo_file("fixtures/ap-short-128.dcm");
    let body = data_set(&src);
    let mut scu = StoreScu::connect(
        &scp.local_addr().to_string(),
        "TESTSCU",
        "FLUORO",
        &[(XA, &[EXPLICIT_LE])],
    )
    .unwrap();
    for uid in ["1.2.826.0.1.99.1", "1.2.826.0.1.99.2"] {
        assert_eq!(scu.store(XA, uid, EXPLICIT_LE, &body).unwrap(), 0);
        let ScpEvent::Stored(inst) = next_event(&rx) else {
            panic!("expected a stored instance")
        };
        assert_eq!(inst.sop_instance_uid, uid);
        assert_eq!(inst.calling_ae_title, "TESTSCU");
        assert_eq!(inst.path, dir.join(format!("{uid}.dcm")));
        assert!(data_set(&inst.path) == body, "stored data set differs");
        assert_eq!(inst.bytes as usize, body.len());
        // the stored file reads like the original
        let a_study = fluoro_dicom::Study::open(&inst.path).unwrap();
        let b_study = fluoro_dicom::Study::open(&src).unwrap();
        assert_eq!(a_study.frame_count(), b_study.frame_count());
        assert!(same_frames(&a_study, &b_study));
    }
    // a class that was not negotiated is an error before anything is sent
    assert!(
        scu.store("1.2.840.10008.5.1.4.1.1.7", "1.2.3", EXPLICIT_LE, &body)
            .is_err()
    );
    scu.release().unwrap();
    assert!(
        std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .path()
            .to_string_lossy()
            .ends_with(".partial"))
    );
    scp.stop();
}

/// A raw dicom-rs association offering XA in explicit little endian, and its context id.
fn raw_association(scp: &ScpHandle) -> (dicom_ul::ClientAssociation<std::net::TcpStream>, u8) {
    let a = ClientAssociationOptions::new()
        .with_presentation_context(XA, vec![EXPLICIT_LE])
        .establish(scp.local_addr())
        .unwrap();
    let pc = a.presentation_contexts()[0].id;
    (a, pc)
}

/// A raw dicom-rs association with a C-STORE command already sent (the data is up to the
/// test, so it can misbehave).
fn raw_store_begin(
    scp: &ScpHandle,
    message_id: u16,
    uid: &str,
) -> (dicom_ul::ClientAssociation<std::net::TcpStream>, u8) {
    let (mut a, pc) = raw_association(scp);
    a.send(&Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Command,
            is_last: true,
            data: store_command(message_id, XA, uid),
        }],
    })
    .unwrap();
    (a, pc)
}

#[test]
fn an_interrupted_transfer_leaves_no_file_and_the_receiver_goes_on() {
    let (scp, rx, dir) = start("interrupted");
    let body = data_set(&repo_file("fixtures/ap-short-128.dcm"));
    let (mut a, pc) = raw_store_begin(&scp, 1, "1.2.826.0.1.99.3");
    a.send(&Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Data,
            is_last: false,
            data: body[..4000].to_vec(),
        }],
    })
    .unwrap();
    a.abort().unwrap();
    let ScpEvent::Refused { reason, .. } = next_event(&rx) else {
        panic!("expected a refusal")
    };
    assert!(
        reason.contains("before the instance was complete"),
        "{reason}"
    );
    assert!(matches!(next_event(&rx), ScpEvent::Failed(_)));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    // garbage instead of an association request: an error event, nothing stored
    let mut s = std::net::TcpStream::connect(scp.local_addr()).unwrap();
    s.write_all(&[0x42; 64]).unwrap();
    drop(s);
    let ScpEvent::Failed(msg) = next_event(&rx) else {
        panic!("expected a failure")
    };
    assert!(msg.contains("negotiation failed"), "{msg}");

    // and the next sender is served
    let (mut a, pc) = raw_store_begin(&scp, 2, "1.2.826.0.1.99.4");
    {
        let mut w = a.send_pdata(pc);
        w.write_all(&body).unwrap();
        w.finish().unwrap();
    }
    assert_eq!(response_status(a.receive().unwrap()), 0);
    assert!(matches!(next_event(&rx), ScpEvent::Stored(_)));
    a.release().unwrap();
    scp.stop();
}

#[test]
fn a_wrong_sop_class_on_the_context_is_refused_with_a_status() {
    let (scp, rx, dir) = start("wrong-class");
    let (mut a, pc) = raw_association(&scp);
    a.send(&Pdu::PData {
        data: vec![
            PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: store_command(1, "1.2.840.10008.5.1.4.1.1.4", "1.2.3"),
            },
            PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Data,
                is_last: true,
                data: vec![0; 64],
            },
        ],
    })
    .unwrap();
    assert_eq!(response_status(a.receive().unwrap()), 0x0122);
    a.release().unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    scp.stop();
}

fn dcmtk(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found && std::env::var("FLUORO_REQUIRE_DCMTK").is_ok_and(|v| v == "1") {
        panic!("{tool} not installed but FLUORO_REQUIRE_DCMTK=1 (apt-get install dcmtk)");
    }
    if !found {
        eprintln!("{tool} not installed: DCMTK interoperability not checked");
    }
    found
}

#[test]
fn dcmtk_storescu_and_echoscu_are_served() {
    if !(dcmtk("storescu") && dcmtk("echoscu")) {
        return;
    }
    let (scp, rx, _dir) = start("dcmtk");
    let port = scp.local_addr().port().to_string();
    let echo = Command::new("echoscu")
        .args(["-aec", "FLUORO", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert!(echo.status.success(), "{echo:?}");

    let corpus = std::env::var("FLUORO_DICOM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_file("../shared/dicom-corpus"));
    let mut files = vec![
        repo_file("fixtures/clo-cross-256.dcm"),
        repo_file("fixtures/ap-short-128.dcm"),
    ];
    // a compressed XA run from the corpus (JPEG lossless), when the corpus is there
    let jpll = corpus.join("files/XA1_JPLL");
    if jpll.exists() {
        files.push(jpll);
    }
    let out = Command::new("storescu")
        .args(["-xs", "-aec", "FLUORO", "-aet", "CARM1", "127.0.0.1", &port])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for f in &files {
        let ScpEvent::Stored(inst) = next_event(&rx) else {
            panic!("expected a stored instance for {}", f.display())
        };
        assert_eq!(inst.calling_ae_title, "CARM1");
        // DCMTK re-encodes the data set, so compare what matters: every decoded frame
        let (got, sent) = (
            fluoro_dicom::Study::open(&inst.path).unwrap(),
            fluoro_dicom::Study::open(f).unwrap(),
        );
        assert!(same_frames(&got, &sent), "{}", f.display());
    }
    scp.stop();
}
