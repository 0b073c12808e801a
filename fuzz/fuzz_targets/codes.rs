//! Region codes and resident ID numbers: parsing never panics and what
//! parses is consistent (level, parent, roll-ups; check digits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuopin::codes::{id_check_char, id_number_valid, RegionCode};
use tuopin::Level;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = RegionCode::parse(s) {
        assert_eq!(code.as_str().len(), 12);
        let level = code.level();
        assert_eq!(
            code.roll_up(level).expect("own level").as_str(),
            code.as_str()
        );
        if let Some(parent) = code.parent() {
            assert!(parent.level() < level);
            assert_eq!(RegionCode::parse(parent.as_str()).as_ref(), Ok(&parent));
        } else {
            assert_eq!(level, Level::Province);
        }
        for l in Level::ALL.iter().filter(|l| **l <= level) {
            let up = code.roll_up(*l).expect("a level above");
            assert_eq!(up.level(), *l);
        }
    }
    let valid = id_number_valid(s);
    if valid {
        let chars: Vec<char> = s.chars().collect();
        assert_eq!(chars.len(), 18);
        let first17: String = chars[..17].iter().collect();
        assert_eq!(
            id_check_char(&first17),
            Some(chars[17].to_ascii_uppercase())
        );
    }
    if s.chars().count() >= 17 {
        let _ = id_check_char(s);
    }
});
