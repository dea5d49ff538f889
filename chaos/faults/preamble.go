package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Channel names the protocol a preamble opens, so that a connection to the
// wrong port fails at once with a clear error.
type Channel byte

const (
	// ChannelRaft: keyraft's raft transport (hashicorp/raft NetworkTransport).
	ChannelRaft Channel = 1
	// ChannelGossip: memberlist TCP streams.
	ChannelGossip Channel = 2
)

func (c Channel) String() string {
	switch c {
	case ChannelRaft:
		return "raft"
	case ChannelGossip:
		return "gossip"
	}
	return fmt.Sprintf("channel(%d)", byte(c))
}

// Preamble wire format, sent by the dialling node as the first bytes of
// every raft and gossip-stream TCP connection, before the protocol's own
// bytes:
//
//	"KRFT" | version (1 byte, 1) | channel (1 byte) | id length (uint16, big endian, 1..MaxNodeIDLen) | node id
//
// It is part of keyraft's transport protocol and always used, with or
// without fault injection.
const (
	preambleMagic   = "KRFT"
	preambleVersion = 1
	// MaxNodeIDLen bounds a node ID in the preamble.
	MaxNodeIDLen = 1024
)

// ErrBadPreamble is wrapped by ReadPreamble's errors for connections that do
// not start with a valid keyraft preamble.
var ErrBadPreamble = errors.New("faults: connection without a valid keyraft preamble")

// WritePreamble writes the preamble announcing node id on channel ch.
func WritePreamble(w io.Writer, ch Channel, id string) error {
	if id == "" || len(id) > MaxNodeIDLen {
		return fmt.Errorf("faults: preamble: node id must be 1..%d bytes", MaxNodeIDLen)
	}
	b := make([]byte, 0, 8+len(id))
	b = append(b, preambleMagic...)
	b = append(b, preambleVersion, byte(ch))
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	_, err := w.Write(b)
	return err
}

// ReadPreamble reads a preamble for channel want and returns the dialling
// node's id. Set a read deadline first: it blocks until the bytes arrive.
func ReadPreamble(r io.Reader, want Channel) (string, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPreamble, err)
	}
	if string(h[:4]) != preambleMagic {
		return "", fmt.Errorf("%w: bad magic %q (a peer of another version, or not keyraft?)", ErrBadPreamble, h[:4])
	}
	if h[4] != preambleVersion {
		return "", fmt.Errorf("%w: unsupported version %d", ErrBadPreamble, h[4])
	}
	if got := Channel(h[5]); got != want {
		return "", fmt.Errorf("%w: %s connection on the %s port", ErrBadPreamble, got, want)
	}
	n := binary.BigEndian.Uint16(h[6:8])
	if n == 0 || n > MaxNodeIDLen {
		return "", fmt.Errorf("%w: node id length %d", ErrBadPreamble, n)
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(r, id); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadPreamble, err)
	}
	return string(id), nil
}
