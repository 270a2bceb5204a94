//! The Intune report export download: a ZIP archive holding one CSV file whose
//! header row names the selected columns. Read from memory, with bounds on
//! everything an archive can declare, and no I/O: the collector uses it to
//! count rows and to fail an unusable download, the normaliser to derive facts
//! from the stored evidence.

use std::io::{Cursor, Read};

use zip::ZipArchive;

/// More entries than this is not an Intune export.
pub const MAX_ENTRIES: usize = 16;
/// Largest report (uncompressed CSV) accepted: far above a 100,000-device
/// tenant's `DefenderAgents` report.
pub const MAX_REPORT_BYTES: u64 = 256 << 20;
/// Largest uncompressed-to-compressed ratio accepted for a report above 1 MiB;
/// deflate cannot go beyond about 1032:1, so more is a lying header or a bomb.
pub const MAX_RATIO: u64 = 1100;

/// The column every row is keyed by.
pub const DEVICE_ID: &str = "DeviceId";

/// A report read out of an export archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// The archive entry the report was read from.
    pub entry: String,
    /// Column names, from the header row.
    pub columns: Vec<String>,
    /// Data rows, cells in column order (a malformed row may have more or fewer).
    pub rows: Vec<Vec<String>>,
}

impl ExportReport {
    /// The position of `column` in the header.
    pub fn column(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }
}

/// An entry name that is a plain file name: no folders, no way out of the
/// folder it would be unpacked into, nothing a terminal would interpret.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}

/// Read the CSV report out of an export archive.
///
/// # Errors
/// A readable reason when the bytes are not a ZIP archive, the archive has too
/// many entries, an entry name that is not a plain file name (path traversal,
/// folders, absolute paths), an encrypted entry, no CSV file or more than one,
/// a report over [`MAX_REPORT_BYTES`] or compressed beyond [`MAX_RATIO`], a
/// report that does not match its declared size or checksum, or CSV that is
/// not UTF-8, has unbalanced quotes, or no `DeviceId` column.
pub fn read_report(bytes: &[u8]) -> Result<ExportReport, String> {
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a ZIP archive ({e})"))?;
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "the archive holds {} entries; an export holds one report (at most {MAX_ENTRIES} accepted)",
            archive.len()
        ));
    }
    let mut reports = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| format!("entry {} is unreadable ({e})", i + 1))?;
        let name = entry.name().to_owned();
        if !plain_file_name(&name) || entry.enclosed_name().is_none() {
            return Err(format!(
                "entry `{}` is not a plain file name (a path or traversal); refused",
                name.escape_debug()
            ));
        }
        if entry.encrypted() {
            return Err(format!("entry `{}` is encrypted", name.escape_debug()));
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            reports.push((i, name, entry.size(), entry.compressed_size()));
        }
    }
    let (index, name, size, packed) = match reports.len() {
        1 => reports.remove(0),
        0 => return Err("the archive holds no CSV report".into()),
        n => {
            return Err(format!(
                "the archive holds {n} CSV files; expected one report"
            ))
        }
    };
    let shown = name.escape_debug().to_string();
    if size > MAX_REPORT_BYTES {
        return Err(format!(
            "report `{shown}` declares {size} bytes, more than the {MAX_REPORT_BYTES} accepted"
        ));
    }
    if size > 1 << 20 && size / packed.max(1) > MAX_RATIO {
        return Err(format!(
            "report `{shown}` declares {size} bytes from {packed} compressed (more than {MAX_RATIO}:1, a zip bomb)"
        ));
    }
    let entry = archive
        .by_index(index)
        .map_err(|e| format!("report `{shown}` cannot be opened ({e})"))?;
    let mut data = Vec::new();
    // Reading to the end makes the reader check the entry's CRC-32; the bound
    // holds whatever the header claims.
    entry
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("report `{shown}` is corrupt ({e})"))?;
    if data.len() as u64 != size {
        return Err(format!(
            "report `{shown}` holds {} bytes but declares {size}",
            data.len()
        ));
    }
    let text = std::str::from_utf8(&data)
        .map_err(|e| format!("report `{shown}` is not UTF-8 text ({e})"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = parse_csv(text).map_err(|e| format!("report `{shown}`: {e}"))?;
    if records.is_empty() {
        return Err(format!("report `{shown}` has no header row"));
    }
    let columns = records.remove(0);
    if !columns.iter().any(|c| c == DEVICE_ID) {
        return Err(format!("report `{shown}` has no {DEVICE_ID} column"));
    }
    Ok(ExportReport {
        entry: name,
        columns,
        rows: records,
    })
}

/// Parse CSV (RFC 4180): comma-separated fields, records ended by CRLF or LF,
/// fields in double quotes may hold commas, line breaks and doubled quotes.
/// Blank lines are skipped.
///
/// # Errors
/// When a quoted field is never closed, or text follows its closing quote.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut at_field_start = true;
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if at_field_start => {
                let opened = line;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!("line {opened}: a quoted field is never closed"))
                        }
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                    }
                }
                at_field_start = false;
                if !matches!(chars.peek(), None | Some(',' | '\n' | '\r')) {
                    return Err(format!("line {line}: text after a closing quote"));
                }
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                at_field_start = true;
                line += 1;
            }
            c => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if !at_field_start || !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    Ok(rows)
}

/// Quote one CSV field when it needs it (commas, quotes, line breaks, or
/// leading or trailing spaces).
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value.trim() != value {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, SimpleFileOptions::default())
                .expect("start");
            w.write_all(body).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        let rows =
            parse_csv("a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n,,\n").expect("csv");
        assert_eq!(
            rows,
            vec![
                vec!["a", "b", "c"],
                vec!["x,1", "say \"hi\"", "two\nlines"],
                vec!["", "", ""],
            ]
        );
        assert!(parse_csv("a,\"b\n").is_err());
        assert!(parse_csv("\"a\"b,c\n").is_err());
        for value in ["plain", "a,b", "q\"q", "line\nbreak", " padded", ""] {
            let line = format!("{},x", csv_field(value));
            assert_eq!(parse_csv(&line).expect("csv")[0][0], value);
        }
    }

    #[test]
    fn a_report_is_read_with_its_columns_and_rows() {
        let zip = archive(&[(
            "DefenderAgents_1.csv",
            b"\xef\xbb\xbfDeviceId,DeviceName\r\nd1,\"HOST, one\"\r\nd2,HOST-2\r\n",
        )]);
        let report = read_report(&zip).expect("report");
        assert_eq!(report.entry, "DefenderAgents_1.csv");
        assert_eq!(report.columns, ["DeviceId", "DeviceName"]);
        assert_eq!(report.rows, [["d1", "HOST, one"], ["d2", "HOST-2"]]);
    }

    #[test]
    fn unsafe_or_absurd_archives_are_refused_with_a_reason() {
        let csv: &[u8] = b"DeviceId\nd1\n";
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not a zip at all".to_vec(), "not a ZIP"),
            (Vec::new(), "not a ZIP"),
            (
                archive(&[("../../etc/report.csv", csv)]),
                "not a plain file name",
            ),
            (
                archive(&[("/abs/report.csv", csv)]),
                "not a plain file name",
            ),
            (archive(&[("..\\report.csv", csv)]), "not a plain file name"),
            (archive(&[("dir/report.csv", csv)]), "not a plain file name"),
            (archive(&[("readme.txt", b"hi")]), "no CSV report"),
            (archive(&[("a.csv", csv), ("b.csv", csv)]), "2 CSV files"),
            (archive(&[("a.csv", b"Name\nx\n")]), "no DeviceId column"),
            (archive(&[("a.csv", b"DeviceId\n\"open\n")]), "never closed"),
            (archive(&[("a.csv", b"\xff\xfe\n")]), "not UTF-8"),
            (archive(&[("a.csv", b"")]), "no header row"),
        ];
        for (bytes, want) in cases {
            let got = read_report(&bytes).expect_err(want);
            assert!(got.contains(want), "{want}: {got}");
        }
        let many: Vec<(String, &[u8])> = (0..=MAX_ENTRIES)
            .map(|i| (format!("f{i}.txt"), csv))
            .collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        assert!(read_report(&archive(&many))
            .expect_err("many")
            .contains("entries"));
    }

    /// Overwrite the uncompressed size every header of the first entry declares.
    fn declare_size(zip: &mut [u8], size: u32) {
        let bytes = size.to_le_bytes();
        zip[22..26].copy_from_slice(&bytes);
        let central = (0..zip.len() - 4)
            .find(|&i| zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02])
            .expect("central directory");
        zip[central + 24..central + 28].copy_from_slice(&bytes);
    }

    #[test]
    fn a_zip_bomb_an_oversized_and_a_corrupt_entry_are_refused() {
        let mut bomb = archive(&[("bomb.csv", b"DeviceId\nd1\n")]);
        declare_size(&mut bomb, 200 << 20);
        let got = read_report(&bomb).expect_err("bomb");
        assert!(got.contains("zip bomb"), "{got}");

        let mut huge = archive(&[("huge.csv", b"DeviceId\nd1\n")]);
        declare_size(&mut huge, u32::MAX);
        let got = read_report(&huge).expect_err("huge");
        assert!(got.contains("more than the"), "{got}");

        let mut lying = archive(&[("lying.csv", b"DeviceId\nd1\nd2\n")]);
        declare_size(&mut lying, 9);
        assert!(read_report(&lying).is_err(), "short declared size");

        let mut zip = archive(&[("r.csv", b"DeviceId\nd1\nd2\nd3\n")]);
        let extra = usize::from(u16::from_le_bytes([zip[28], zip[29]]));
        let at = 30 + "r.csv".len() + extra + 2;
        zip[at] ^= 0x55;
        assert!(read_report(&zip).is_err(), "flipped data byte");
    }
}
