package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// slogLevelTrace is below slog.LevelDebug; raft's Trace logs land there.
const slogLevelTrace = slog.LevelDebug - 4

// hclogAdapter implements hclog.Logger on top of an *slog.Logger so that
// raft's structured logs keep their key/value pairs and levels.
type hclogAdapter struct {
	base    *slog.Logger // without the component attribute
	l       *slog.Logger // base + component + implied args
	name    string
	implied []any
}

func newHclogAdapter(base *slog.Logger, name string) hclog.Logger {
	return (&hclogAdapter{base: base}).build(name, nil)
}

func (a *hclogAdapter) build(name string, implied []any) *hclogAdapter {
	l := a.base
	if name != "" {
		l = l.With("component", name)
	}
	if len(implied) > 0 {
		l = l.With(convertArgs(implied)...)
	}
	return &hclogAdapter{base: a.base, l: l, name: name, implied: implied}
}

func toSlogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slogLevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	a.l.Log(context.Background(), toSlogLevel(level), msg, convertArgs(args)...)
}

// convertArgs renders hclog's formatting value types (hclog.Fmt etc.) the
// way hclog would; other values pass through unchanged.
func convertArgs(args []any) []any {
	var out []any
	for i, v := range args {
		var r any
		switch x := v.(type) {
		case hclog.Format:
			if len(x) > 0 {
				if f, ok := x[0].(string); ok {
					r = fmt.Sprintf(f, x[1:]...)
					break
				}
			}
			r = fmt.Sprint(x...)
		case hclog.Hex:
			r = "0x" + strconv.FormatInt(int64(x), 16)
		case hclog.Octal:
			r = "0" + strconv.FormatInt(int64(x), 8)
		case hclog.Binary:
			r = "0b" + strconv.FormatInt(int64(x), 2)
		case hclog.Quote:
			r = strconv.Quote(string(x))
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = r
	}
	if out == nil {
		return args
	}
	return out
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(l slog.Level) bool { return a.l.Enabled(context.Background(), l) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(slogLevelTrace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(slog.LevelDebug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(slog.LevelInfo) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(slog.LevelWarn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(slog.LevelError) }

func (a *hclogAdapter) ImpliedArgs() []any { return append([]any(nil), a.implied...) }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	implied := append(append([]any(nil), a.implied...), args...)
	return a.build(a.name, implied)
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.build(name, a.implied)
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger { return a.build(name, a.implied) }

// SetLevel is a no-op: the slog handler decides what is enabled.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	switch {
	case a.IsTrace():
		return hclog.Trace
	case a.IsDebug():
		return hclog.Debug
	case a.IsInfo():
		return hclog.Info
	case a.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &stdLogWriter{l: a.l, floor: slog.LevelInfo}
}

// stdLogWriter turns lines written by a standard *log.Logger (memberlist's
// "[LEVEL] memberlist: message" lines) into slog records. Lines tagged [ERR]
// or [ERROR] are logged at Warn (memberlist reports transient network
// failures at that level), [WARN] at floor or Warn whichever is lower,
// everything else at floor.
type stdLogWriter struct {
	l     *slog.Logger
	floor slog.Level
	mu    sync.Mutex
	buf   []byte
}

func (w *stdLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.emit(line)
	}
	if len(w.buf) > 64<<10 { // never buffer unbounded partial lines
		w.emit(string(w.buf))
		w.buf = nil
	}
	return len(p), nil
}

func (w *stdLogWriter) emit(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	level := w.floor
	for _, t := range []struct {
		tag string
		lvl slog.Level
	}{
		{"[ERR]", slog.LevelWarn},
		{"[ERROR]", slog.LevelWarn},
		{"[WARN]", min(w.floor, slog.LevelWarn)},
		{"[INFO]", w.floor},
		{"[DEBUG]", w.floor},
		{"[TRACE]", w.floor},
	} {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			level = t.lvl
			line = strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.l.Log(context.Background(), level, line)
}

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger that
// writes to l at Debug (errors at Warn).
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&stdLogWriter{l: l.With("component", "memberlist"), floor: slog.LevelDebug}, "", 0)
}
