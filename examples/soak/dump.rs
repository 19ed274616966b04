//! The raw data behind the report, as tab-separated files under `target/soak-logs/`: every
//! failed request, and every memory and thread sample, for digging further than the
//! report's tables (plotting RSS over time, finding a failure in the processes' logs).

use std::fmt::Write;

use crate::classify;
use crate::load::Record;
use crate::report;
use crate::sample::Sample;
use crate::schedule::Timeline;

/// Every failed request as tab-separated lines (start, latency, request, class, outcome,
/// place relative to the faults), for digging further than the report.
pub fn failures_tsv(records: &[Record], timeline: &Timeline) -> String {
    let mut tsv = String::from("start_s\tlatency_ms\trequest\tclass\toutcome\tfaults\n");
    let mut failed: Vec<&Record> = records.iter().filter(|r| !r.outcome.is_ok()).collect();
    failed.sort_by_key(|r| r.start);
    for r in failed {
        let _ = writeln!(
            tsv,
            "{:.3}\t{:.1}\t{}\t{}\t{}\t{}",
            r.start.as_secs_f64(),
            r.latency.as_secs_f64() * 1e3,
            r.kind.describe(),
            report::class_name(classify::classify(r, timeline)),
            r.outcome.describe().replace('\t', " "),
            classify::relative_to_faults(r, timeline)
        );
    }
    tsv
}

/// All samples as tab-separated lines, to plot memory and threads over the run.
pub fn samples_tsv(samples: &[Sample]) -> String {
    let mut tsv = String::from("t_s\tprocess\tgeneration\tage_s\trss_kib\tthreads\n");
    for s in samples {
        tsv.push_str(&format!(
            "{:.1}\t{}\t{}\t{:.1}\t{}\t{}\n",
            s.at.as_secs_f64(),
            s.name,
            s.generation,
            s.age.as_secs_f64(),
            s.rss_kib,
            s.threads
        ));
    }
    tsv
}
