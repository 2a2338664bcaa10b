//! `fluoro send`: pushes a study to a DICOM Storage SCP (`fluoro live --dicom-listen`, the
//! viewer, or any PACS) with C-STORE. `--per-frame` sends every frame as its own
//! single-frame instance at the recorded timing, as a C-arm does during fluoroscopy; that is
//! how the DICOM live path's latency is measured.

use anyhow::{Context, Result, bail};
use clap::Args;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use fluoro_dicom::{Samples, Study};
use fluoro_scp::scu::StoreScu;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `fluoro send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// The DICOM study to send.
    pub study: PathBuf,
    /// Where the SCP listens, host:port.
    #[arg(long)]
    pub to: String,
    /// The SCP's AE title.
    #[arg(long, default_value = "FLUORO")]
    pub called: String,
    /// Our AE title.
    #[arg(long, default_value = "FLUORO-SEND")]
    pub calling: String,
    /// Send each frame as its own single-frame instance, at the recorded timing.
    #[arg(long)]
    pub per_frame: bool,
    /// Speed for --per-frame (1 = recorded timing, 0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// The data set of a Part 10 file: the bytes after the file meta group.
fn data_set_of(path: &std::path::Path) -> Result<Vec<u8>> {
    let b = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if b.len() < 144 || &b[128..132] != b"DICM" || b[132..136] != [2, 0, 0, 0] {
        bail!(
            "{}: not a DICOM Part 10 file with a file meta group",
            path.display()
        );
    }
    let group = u32::from_le_bytes([b[140], b[141], b[142], b[143]]) as usize;
    let start = 144usize.saturating_add(group);
    if start > b.len() {
        bail!(
            "{}: file meta group length runs past the end",
            path.display()
        );
    }
    Ok(b[start..].to_vec())
}

/// The study's data set without its pixel data, as a template for single-frame instances.
fn single_frame_template(study: &Study) -> InMemDicomObject {
    let mut obj = study.dataset().clone();
    obj.remove_element(tags::PIXEL_DATA);
    obj.remove_element(tags::FRAME_TIME_VECTOR);
    obj.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    obj
}

/// Frame `i` as a single-frame instance (Explicit VR Little Endian) into `out`: `obj` (from
/// [`single_frame_template`]) gets this frame's UID, number and pixels.
fn single_frame(
    study: &Study,
    obj: &mut InMemDicomObject,
    i: usize,
    uid: &str,
    out: &mut Vec<u8>,
) -> Result<()> {
    let frame = study.frame(i)?;
    if frame.samples_per_pixel != 1 {
        bail!("--per-frame sends grayscale studies only");
    }
    let (bits, bytes): (u16, Vec<u8>) = match &frame.samples {
        Samples::U8(v) => (8, v.clone()),
        Samples::U16(v) => (16, v.iter().flat_map(|s| s.to_le_bytes()).collect()),
        Samples::I16(v) => (16, v.iter().flat_map(|s| s.to_le_bytes()).collect()),
        _ => bail!("--per-frame sends 8- and 16-bit studies only"),
    };
    let vr = if bits == 8 { VR::OB } else { VR::OW };
    for (tag, vr, v) in [
        (tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from(uid)),
        (
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from((i + 1).to_string()),
        ),
        (tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(bits)),
        (tags::PIXEL_DATA, vr, PrimitiveValue::from(bytes)),
    ] {
        obj.put(DataElement::new(tag, vr, v));
    }
    out.clear();
    obj.write_dataset_with_ts(&mut *out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| anyhow::anyhow!("frame {i}: cannot encode: {e}"))?;
    Ok(())
}

/// Runs `fluoro send`.
pub fn run(a: &SendArgs) -> Result<()> {
    if !(a.speed.is_finite() && a.speed >= 0.0) {
        bail!("--speed {}: must be >= 0", a.speed);
    }
    let study = Study::open(&a.study)?;
    let info = study.info();
    let class = info.sop_class_uid.clone();
    let t0 = Instant::now();
    if !a.per_frame {
        let ts = info.transfer_syntax_uid.clone();
        let body = data_set_of(&a.study)?;
        let sop = study
            .dataset()
            .element(tags::SOP_INSTANCE_UID)
            .ok()
            .and_then(|e| {
                e.to_str()
                    .ok()
                    .map(|s| s.trim_end_matches('\0').to_string())
            })
            .with_context(|| format!("{}: no SOP Instance UID", a.study.display()))?;
        let mut scu = StoreScu::connect(&a.to, &a.calling, &a.called, &[(&class, &[&ts])])?;
        let status = scu.store(&class, &sop, &ts, &body)?;
        scu.release()?;
        if status != 0 {
            bail!("{} refused the study: status 0x{status:04X}", a.to);
        }
        eprintln!(
            "sent {} ({:.1} MB) to {} in {:.0} ms",
            a.study.display(),
            body.len() as f64 / 1e6,
            a.to,
            t0.elapsed().as_secs_f64() * 1e3
        );
        return Ok(());
    }
    // a fresh UID root per run: 2.25.<microseconds since 1970 * 10^6 + process id>
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let base = format!(
        "2.25.{}",
        micros * 1_000_000 + u128::from(std::process::id())
    );
    let mut scu = StoreScu::connect(&a.to, &a.calling, &a.called, &[(&class, &[EXPLICIT_LE])])?;
    let times = &info.timing.times_ms;
    let (mut sent, mut refused) = (0usize, 0usize);
    let (mut obj, mut body) = (single_frame_template(&study), Vec::new());
    for i in 0..study.frame_count() {
        let t = times.get(i).copied().unwrap_or(0.0);
        if a.speed > 0.0 {
            let due = Duration::from_secs_f64(t / a.speed / 1000.0);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let uid = format!("{base}.{}", i + 1);
        single_frame(&study, &mut obj, i, &uid, &mut body)?;
        match scu.store(&class, &uid, EXPLICIT_LE, &body)? {
            0 => sent += 1,
            s => {
                refused += 1;
                eprintln!("frame {i}: refused with status 0x{s:04X}");
            }
        }
    }
    scu.release()?;
    eprintln!(
        "sent {sent} frames as single-frame instances to {} in {:.1} s ({refused} refused)",
        a.to,
        t0.elapsed().as_secs_f64()
    );
    if refused > 0 {
        bail!("{refused} frames refused");
    }
    Ok(())
}
