//! How the report writes quantities: MiB, µs or ms, signed changes, thousands
//! separators; shared by the rows of [`crate::report`] and [`crate::register_report`].

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn signed_mib(kib: i64) -> String {
    format!("{:+.1} MiB", kib as f64 / 1024.0)
}

pub fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{:.2} ms", us as f64 / 1000.0)
    }
}

pub fn signed_micros(us: i64) -> String {
    let sign = if us < 0 { "−" } else { "+" };
    format!("{sign}{}", micros(us.unsigned_abs()))
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
