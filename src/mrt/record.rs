//! MRT records (stub until the encoders land).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Second,
    Microsecond,
}
