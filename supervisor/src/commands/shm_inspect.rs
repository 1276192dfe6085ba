//! `stackctl shm inspect NAME`: what is in a segment right now.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use stackctl_core::layout::{PixelFormat, SEGMENT_SIZE, SLOT_DATA_CAPACITY, slot_of};
use stackctl_core::shm::{RingSnapshot, Segment, ShmError};
use stackctl_media::clock::monotonic_ns;
use stackctl_media::h264::{NalType, SpsInfo, analyse};

use crate::cli::{InspectArgs, segment_name};

/// Everything `inspect` reports.
#[derive(Debug, Serialize)]
struct Report {
    name: String,
    size: u64,
    layout_ok: bool,
    write_index: u32,
    frame_interval_ms: u32,
    fps: Option<f64>,
    formats: std::collections::BTreeMap<&'static str, usize>,
    last_frame: Option<LastFrame>,
    sps: Option<SpsReport>,
}

#[derive(Debug, Serialize)]
struct LastFrame {
    frame_number: u64,
    format: &'static str,
    width: i32,
    height: i32,
    data_size: u64,
    camera_id: i32,
    age_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
struct SpsReport {
    profile: &'static str,
    level: &'static str,
    profile_level_id: String,
    width: u32,
    height: u32,
}

/// Runs the command.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let name = segment_name(&args.name);
    let seg = match Segment::open(&name) {
        Ok(seg) => seg,
        Err(ShmError::NotFound(_)) => anyhow::bail!(
            "shared memory segment {name} does not exist: is the camera daemon running? \
             (segments are listed in /dev/shm)"
        ),
        Err(e) => return Err(e.into()),
    };
    let report = build(&seg);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        );
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn build(seg: &Segment) -> Report {
    let snap = RingSnapshot::take(seg);
    let now = monotonic_ns();
    let last_frame = snap.newest().map(|(_, h)| LastFrame {
        frame_number: h.frame_number,
        format: PixelFormat::from_raw(h.format).name(),
        width: h.width,
        height: h.height,
        data_size: h.data_size,
        camera_id: h.camera_id,
        age_ms: now
            .checked_sub(h.timestamp.as_nanos())
            .map(|ns| ns as f64 / 1e6),
    });
    Report {
        name: seg.name().to_owned(),
        size: seg.id().size,
        layout_ok: seg.id().size == SEGMENT_SIZE as u64,
        write_index: snap.write_index,
        frame_interval_ms: snap.frame_interval_ms,
        fps: snap.fps(),
        formats: snap.formats(),
        last_frame,
        sps: find_sps(seg, &snap),
    }
}

/// The newest SPS still in the ring, if any.
fn find_sps(seg: &Segment, snap: &RingSnapshot) -> Option<SpsReport> {
    snap.frames.iter().rev().find_map(|(c, header)| {
        let size = usize::try_from(header.data_size).ok()?;
        if PixelFormat::from_raw(header.format) != PixelFormat::H264
            || size == 0
            || size > SLOT_DATA_CAPACITY
        {
            return None;
        }
        let mut data = Vec::new();
        seg.copy_data(slot_of(*c), size, &mut data);
        let info = analyse(&data).ok()?;
        let nal = info.first(NalType::Sps)?.get(&data)?;
        let sps = SpsInfo::parse(nal).ok()?;
        Some(SpsReport {
            profile: sps.profile_name(),
            level: sps.level_name(),
            profile_level_id: sps.profile_level_id(),
            width: sps.width,
            height: sps.height,
        })
    })
}

fn print_text(r: &Report) {
    let layout = if r.layout_ok {
        "layout ok"
    } else {
        "WRONG SIZE"
    };
    println!("segment      {}  ({} bytes, {layout})", r.name, r.size);
    println!("write_index  {}", r.write_index);
    let rate = r.fps.map_or_else(
        || "unknown (fewer than 2 frames)".to_owned(),
        |f| format!("{f:.1} fps"),
    );
    println!(
        "frame rate   {rate}  (frame_interval_ms {})",
        r.frame_interval_ms
    );
    let formats: Vec<_> = r.formats.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    println!(
        "formats      {}",
        if formats.is_empty() {
            "none written yet".to_owned()
        } else {
            formats.join(", ")
        }
    );
    match &r.last_frame {
        Some(f) => {
            let age = f
                .age_ms
                .map_or_else(|| "unknown".to_owned(), |ms| format!("{ms:.0} ms"));
            println!(
                "last frame   #{}  {}  {}x{}  {} bytes  camera {}  age {age}",
                f.frame_number, f.format, f.width, f.height, f.data_size, f.camera_id
            );
        }
        None => println!("last frame   none: the writer has not published anything"),
    }
    match &r.sps {
        Some(s) => println!(
            "h264         {} profile, level {}, {}x{} (profile-level-id {})",
            s.profile, s.level, s.width, s.height, s.profile_level_id
        ),
        None => println!("h264         no SPS in the ring"),
    }
}
