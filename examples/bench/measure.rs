//! Rows of the result table, resident memory, machine description.

use std::time::Duration;

/// One line of the table.
pub struct Row {
    pub figure: String,
    pub emitter: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    /// A throughput figure compared to a baseline, with a minimum ratio.
    pub fn ratio(
        figure: &str,
        unit: &str,
        emitter: f64,
        baseline: f64,
        min_ratio: Option<f64>,
    ) -> Row {
        let ratio = emitter / baseline;
        Row {
            figure: figure.into(),
            emitter: format!("{} {unit}", thousands(emitter)),
            baseline: format!("{} {unit}", thousands(baseline)),
            ratio: Some(ratio),
            target: min_ratio.map_or("—".into(), |m| format!("ratio ≥ {m}")),
            met: min_ratio.map(|m| ratio >= m),
        }
    }

    /// A cost (time, CPU) compared to a baseline: lower is better, and the
    /// ratio emitter / baseline must stay within `max_ratio`.
    pub fn cost(figure: &str, unit: &str, emitter: f64, baseline: f64, max_ratio: f64) -> Row {
        let ratio = emitter / baseline;
        Row {
            figure: figure.into(),
            emitter: format!("{emitter:.2} {unit}"),
            baseline: format!("{baseline:.2} {unit}"),
            ratio: Some(ratio),
            target: format!("ratio ≤ {max_ratio}"),
            met: Some(ratio <= max_ratio),
        }
    }

    /// An absolute figure with its target.
    pub fn absolute(
        figure: &str,
        emitter: String,
        baseline: String,
        target: &str,
        met: Option<bool>,
    ) -> Row {
        Row {
            figure: figure.into(),
            emitter,
            baseline,
            ratio: None,
            target: target.into(),
            met,
        }
    }
}

impl Row {
    /// One line a child process prints for its parent.
    pub fn to_line(&self) -> String {
        let met = match self.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        format!(
            "ROW\t{}\t{}\t{}\t{}\t{met}",
            self.figure, self.emitter, self.baseline, self.target
        )
    }

    /// A row a child printed with `to_line`.
    pub fn from_line(line: &str) -> Option<Row> {
        let mut fields = line.strip_prefix("ROW\t")?.split('\t');
        let (figure, emitter, baseline, target, met) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        Some(Row::absolute(
            figure,
            emitter.into(),
            baseline.into(),
            target,
            match met {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
        ))
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| figure | emitter | baseline | ratio | target | met? |\n| --- | --- | --- | --- | --- | --- |\n");
    for row in rows {
        let ratio = row.ratio.map_or("—".into(), |r| format!("{r:.2}"));
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.figure, row.emitter, row.baseline, ratio, row.target, met
        ));
    }
    out
}

/// `12345.6` → `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// Resident set size of process `pid` (`self` for this one), in bytes.
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU model, cores and memory, for the README.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("machine: {cpu}, {cores} cores, {memory} GiB")
}

/// Percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// CPU time of this process's threads so far, in nanoseconds from each
/// thread's `schedstat` (`/proc/self/stat` counts in 10 ms ticks, too coarse
/// for one event). Threads that exited are not counted: measure across a span
/// in which the server's threads live throughout.
pub fn cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Raises this process's open-file limit to its hard limit (children
/// inherit it); returns the limit now in force.
pub fn raise_open_files() -> u64 {
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    let _ = rlimit::Resource::NOFILE.set(hard, hard);
    rlimit::Resource::NOFILE
        .get()
        .map_or(1024, |(soft, _)| soft)
}
