//! The wall clock both servers read, in Unix seconds (one place, so a test or a future
//! injectable clock changes it once).

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
