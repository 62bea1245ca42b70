//! BGP wire format: framing, OPEN, UPDATE, NOTIFICATION.
