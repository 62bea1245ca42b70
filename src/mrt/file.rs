//! MRT files (stub until the file mechanics land).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    RouteViews,
    Ris,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bzip2,
    None,
}
impl Layout {
    pub fn default_compression(self) -> Compression {
        match self {
            Layout::RouteViews => Compression::Bzip2,
            Layout::Ris => Compression::Gzip,
        }
    }
}
