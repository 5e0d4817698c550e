//! The Chinese working-day calendar (工作日): weekends, public holidays (法定节假日) and the
//! weekend days worked in exchange (调休). Owns: loading the NateScarlet/holiday-cn JSON files
//! (one `{year}.json` per year, MIT, see data/holiday-cn/LICENSE) from a folder an operator
//! can update without a rebuild, the copy embedded in the binary as a fallback, `is_workday`,
//! and deadline arithmetic in working days. A year without data (no file, or a file whose
//! `days` is empty because the State Council notice is not out yet) is counted by weekends
//! only, with a warning: never a crash. Leaves what a deadline means to `deadline`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use include_dir::{include_dir, Dir};
use serde::Deserialize;

/// The holiday-cn files shipped with gongkai (with their LICENSE and SOURCE.md).
pub static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/data/holiday-cn");

/// Where a calendar was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    Folder(PathBuf),
    Embedded,
}

impl std::fmt::Display for CalendarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalendarSource::Folder(p) => write!(f, "{}", p.display()),
            CalendarSource::Embedded => f.write_str("内置日历数据"),
        }
    }
}

#[derive(Debug, Deserialize)]
struct YearFile {
    year: i32,
    #[serde(default)]
    days: Vec<DayEntry>,
}

#[derive(Debug, Deserialize)]
struct DayEntry {
    name: String,
    date: NaiveDate,
    #[serde(rename = "isOffDay")]
    is_off_day: bool,
}

/// A day that differs from the weekday rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// 春节, 国庆节 ...
    pub name: String,
    /// True: a holiday (放假); false: a weekend day worked (调休上班).
    pub off: bool,
}

#[derive(Debug)]
pub struct Calendar {
    exceptions: BTreeMap<NaiveDate, Exception>,
    years: BTreeSet<i32>,
    source: CalendarSource,
    /// Problems met while loading (a bad file is skipped, not fatal), in Chinese.
    load_warnings: Vec<String>,
    /// Years already warned about, so a loop over many dates warns once per year.
    warned: Mutex<BTreeSet<i32>>,
}

impl Calendar {
    /// A calendar that knows no holidays at all (weekends only).
    pub fn weekends_only() -> Calendar {
        Calendar {
            exceptions: BTreeMap::new(),
            years: BTreeSet::new(),
            source: CalendarSource::Embedded,
            load_warnings: Vec::new(),
            warned: Mutex::new(BTreeSet::new()),
        }
    }

    /// The files embedded in the binary.
    pub fn embedded() -> Calendar {
        let files = EMBEDDED.files().filter_map(|f| {
            let name = f.path().file_name()?.to_str()?.to_string();
            Some((name, f.contents().to_vec()))
        });
        Self::from_files(files, CalendarSource::Embedded)
    }

    /// Loads every `{year}.json` in `dir`. A folder that cannot be read falls back to the
    /// embedded data (with a warning); a file that cannot be parsed is skipped (its year then
    /// counts weekends only) and named in `warnings()`.
    pub fn load(dir: &Path) -> Calendar {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                let mut cal = Self::embedded();
                let msg = format!(
                    "calendar.dir：无法读取日历目录 {}（{e}），改用内置日历数据",
                    dir.display()
                );
                tracing::warn!(dir = %dir.display(), error = %e, "calendar folder unreadable, using the embedded data");
                cal.load_warnings.insert(0, msg);
                return cal;
            }
        };
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".json") {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => files.push((name.to_string(), bytes)),
                Err(e) => warnings.push(format!("{}：无法读取（{e}），已跳过", path.display())),
            }
        }
        let mut cal = Self::from_files(files, CalendarSource::Folder(dir.to_path_buf()));
        warnings.append(&mut cal.load_warnings);
        for w in &warnings {
            tracing::warn!(problem = %w, "calendar file skipped");
        }
        cal.load_warnings = warnings;
        cal
    }

    fn from_files(
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
        source: CalendarSource,
    ) -> Calendar {
        let mut cal = Calendar::weekends_only();
        cal.source = source;
        let mut files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        files.sort();
        for (name, bytes) in files {
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let Ok(file_year) = stem.parse::<i32>() else {
                continue;
            };
            let parsed: YearFile = match serde_json::from_slice(&bytes) {
                Ok(y) => y,
                Err(e) => {
                    cal.load_warnings.push(format!(
                        "{name}：不是有效的 holiday-cn 日历文件（{e}），{file_year} 年按仅周末计算"
                    ));
                    continue;
                }
            };
            if parsed.year != file_year {
                cal.load_warnings.push(format!(
                    "{name}：文件内 year = {}，与文件名不符，已跳过",
                    parsed.year
                ));
                continue;
            }
            if parsed.days.is_empty() {
                // The notice for that year is not out yet: no data, not "no holidays".
                continue;
            }
            cal.years.insert(file_year);
            for d in parsed.days {
                cal.exceptions.insert(
                    d.date,
                    Exception {
                        name: d.name,
                        off: d.is_off_day,
                    },
                );
            }
        }
        cal
    }

    pub fn source(&self) -> &CalendarSource {
        &self.source
    }

    /// Problems met while loading, in Chinese (empty when all went well).
    pub fn warnings(&self) -> &[String] {
        &self.load_warnings
    }

    /// Years with holiday data.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    pub fn has_year(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The holiday or make-up working day on `date`, if it is one.
    pub fn exception(&self, date: NaiveDate) -> Option<&Exception> {
        self.exceptions.get(&date)
    }

    /// Mon-Fri and not a holiday, or a listed make-up working day. For a year without data,
    /// Mon-Fri (a warning is logged once per year).
    pub fn is_workday(&self, date: NaiveDate) -> bool {
        if let Some(e) = self.exceptions.get(&date) {
            return !e.off;
        }
        if !self.years.contains(&date.year()) {
            self.warn_missing(date.year());
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }

    fn warn_missing(&self, year: i32) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.insert(year) {
            tracing::warn!(
                year,
                source = %self.source,
                "no holiday data for this year: counting weekends only"
            );
        }
    }

    /// The `n`-th working day after `start` (the start day itself does not count): the last
    /// day of a deadline of `n` working days from `start`. `n = 0` gives `start`.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_workday(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days in `(from, to]`: how many of a budget counted from `from` are used up on
    /// `to`. Zero when `to <= from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d += Duration::days(1);
            if self.is_workday(d) {
                n += 1;
            }
        }
        n
    }

    /// Years in `[from.year(), to.year()]` that have no data (their deadlines count weekends
    /// only), so that a report or `status` can say so.
    pub fn missing_years(&self, from: NaiveDate, to: NaiveDate) -> Vec<i32> {
        (from.year()..=to.year())
            .filter(|y| !self.years.contains(y))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_2026_spring_festival_is_off_and_its_saturdays_are_worked() {
        let cal = Calendar::embedded();
        assert!(cal.has_year(2026));
        for day in 15..=23 {
            let date = NaiveDate::from_ymd_opt(2026, 2, day).unwrap();
            assert!(!cal.is_workday(date), "{date} should be off");
        }
        assert!(cal.is_workday(d("2026-02-14")), "Saturday 02-14 is worked");
        assert!(cal.is_workday(d("2026-02-28")), "Saturday 02-28 is worked");
        assert!(cal.is_workday(d("2026-02-13")));
        assert!(cal.is_workday(d("2026-02-24")));
        assert!(!cal.is_workday(d("2026-02-22")));
        assert_eq!(cal.exception(d("2026-02-17")).unwrap().name, "春节");
    }

    #[test]
    fn a_deadline_across_the_2026_spring_festival_skips_the_holiday() {
        let cal = Calendar::embedded();
        // Formed Thursday 02-12: 02-13 (Fri) is day 1, 02-14 (Sat, worked) day 2, the
        // holiday 02-15..23 counts nothing, 02-24 (Tue) is day 3.
        assert_eq!(cal.add_working_days(d("2026-02-12"), 1), d("2026-02-13"));
        assert_eq!(cal.add_working_days(d("2026-02-12"), 2), d("2026-02-14"));
        assert_eq!(cal.add_working_days(d("2026-02-12"), 3), d("2026-02-24"));
        // 20 working days from 02-12: 02-13, 02-14, 02-24..27 (4), 02-28 (Sat, worked),
        // then Mar 2..6, 9..13 (10) = 17, Mar 16, 17, 18 -> 20.
        assert_eq!(cal.add_working_days(d("2026-02-12"), 20), d("2026-03-18"));
        assert_eq!(
            cal.working_days_between(d("2026-02-12"), d("2026-03-18")),
            20
        );
        assert_eq!(
            cal.working_days_between(d("2026-02-14"), d("2026-02-23")),
            0
        );
        assert_eq!(cal.add_working_days(d("2026-02-12"), 0), d("2026-02-12"));
    }

    #[test]
    fn a_year_without_data_counts_weekends_only_and_is_reported_missing() {
        let cal = Calendar::embedded();
        // 2027.json exists but is empty: the notice is not out.
        assert!(!cal.has_year(2027));
        assert_eq!(cal.missing_years(d("2026-12-20"), d("2027-01-10")), [2027]);
        // 2027-01-01 is a Friday: without data it is a working day.
        assert!(cal.is_workday(d("2027-01-01")));
        assert!(!cal.is_workday(d("2027-01-02")));
        // 2099: no file at all.
        assert_eq!(cal.add_working_days(d("2099-01-02"), 5), d("2099-01-09"));
    }

    #[test]
    fn a_folder_is_loaded_and_a_broken_file_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("2030.json"),
            r#"{"year":2030,"papers":[],"days":[{"name":"测试节","date":"2030-01-07","isOffDay":true}]}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("2031.json"), "{ not json").unwrap();
        let cal = Calendar::load(dir.path());
        assert_eq!(
            cal.source(),
            &CalendarSource::Folder(dir.path().to_path_buf())
        );
        assert!(cal.has_year(2030));
        assert!(!cal.is_workday(d("2030-01-07")));
        assert!(!cal.has_year(2031));
        assert!(cal.warnings().iter().any(|w| w.contains("2031.json")));
        // Not in this folder: 2026 counts weekends only (the folder wins over embedded data).
        assert!(cal.is_workday(d("2026-02-16")));
    }

    #[test]
    fn a_missing_folder_falls_back_to_the_embedded_data() {
        let cal = Calendar::load(Path::new("/nonexistent/holiday-cn"));
        assert_eq!(cal.source(), &CalendarSource::Embedded);
        assert!(cal.has_year(2026));
        assert!(cal.warnings()[0].contains("calendar.dir"));
    }
}
