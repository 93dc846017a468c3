package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// maxErrorSamples is how many error messages a report keeps (it counts all).
const maxErrorSamples = 10

// Latency is a histogram's summary, in microseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func latencyOf(h *histogram) Latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	if h.total == 0 {
		return Latency{}
	}
	return Latency{
		Min:  us(h.min),
		Mean: h.mean() / 1e3,
		P50:  us(h.quantile(0.50)),
		P90:  us(h.quantile(0.90)),
		P99:  us(h.quantile(0.99)),
		P999: us(h.quantile(0.999)),
		Max:  us(h.max),
	}
}

// SizeReport is the result for the messages of one size: in echo mode
// those of the connections of that size, in reactor mode those messages of
// every connection.
type SizeReport struct {
	Size     int     `json:"size"`
	Conns    int     `json:"conns"`
	Requests uint64  `json:"requests"`
	Bytes    uint64  `json:"bytes"`
	ReqPerS  float64 `json:"req_per_s"`
	MBPerS   float64 `json:"mb_per_s"`
	Latency  Latency `json:"latency_us"`
}

func (s *SizeReport) fill(h *histogram, window time.Duration) {
	s.Requests = h.total
	s.Bytes = h.total * uint64(s.Size)
	if window > 0 {
		s.ReqPerS = float64(s.Requests) / window.Seconds()
		s.MBPerS = float64(s.Bytes) / 1e6 / window.Seconds()
	}
	s.Latency = latencyOf(h)
}

// Report is what one run measured, as the summary table (WriteTable) and
// as JSON (WriteJSON, with the field names below). Errors counts every
// problem; in reactor mode it is FailedConns + ReplyErrors + WrongDigests,
// each of which is also counted on its own. Problems are counted over the
// whole run, warmup included; rates and latencies are of the measured
// window only.
type Report struct {
	Tool      string    `json:"tool"`
	Mode      string    `json:"mode"`
	Label     string    `json:"label,omitempty"`
	Addr      string    `json:"addr"`
	Started   time.Time `json:"started"`
	Conns     int       `json:"conns"` // asked for
	Open      int       `json:"open"`  // opened
	Sizes     []int     `json:"sizes"`
	Rate      float64   `json:"rate,omitempty"` // asked for, msgs/s; 0 is a closed loop
	WarmupS   float64   `json:"warmup_s,omitempty"`
	DurationS float64   `json:"duration_s,omitempty"` // the measured window

	// echo and reactor: requests echoed, or messages answered with status 0
	// (and, with Check, the right digest), in the measured window
	Requests uint64       `json:"requests"`
	Bytes    uint64       `json:"bytes"` // payload sent (and echoed), one direction
	ReqPerS  float64      `json:"req_per_s"`
	MBPerS   float64      `json:"mb_per_s"` // 10^6 bytes/s, one direction
	Latency  *Latency     `json:"latency_us,omitempty"`
	PerSize  []SizeReport `json:"per_size,omitempty"`

	// reactor
	InFlight     int    `json:"inflight,omitempty"`      // per connection
	Check        bool   `json:"check,omitempty"`         // digests verified
	ReplyErrors  uint64 `json:"reply_errors,omitempty"`  // replies with status 1
	WrongDigests uint64 `json:"wrong_digests,omitempty"` // status 0 with a result that is not the digest
	FailedConns  int    `json:"failed_conns,omitempty"`  // connections that did not open, or broke before the end

	// idle
	ConnectS        float64 `json:"connect_s,omitempty"` // opening (and first echo of) every connection
	HoldS           float64 `json:"hold_s,omitempty"`
	StillOpen       int     `json:"still_open,omitempty"` // connections that echoed after the hold
	PID             int     `json:"pid,omitempty"`
	RSSBeforeKiB    int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB     int64   `json:"rss_after_kib,omitempty"`
	RSSBytesPerConn float64 `json:"rss_bytes_per_conn,omitempty"`

	Interrupted  bool     `json:"interrupted,omitempty"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Tool:    "asyncgo docs/bench/loadgen",
		Mode:    cfg.Mode,
		Label:   cfg.Label,
		Addr:    cfg.Addr,
		Started: time.Now().UTC().Truncate(time.Second),
		Conns:   cfg.Conns,
		Sizes:   cfg.Sizes,
		Rate:    cfg.Rate,
	}
	if cfg.Mode != "idle" {
		r.WarmupS = cfg.Warmup.Seconds()
	}
	if cfg.Mode == "reactor" {
		r.InFlight, r.Check = cfg.InFlight, cfg.Check
	}
	return r
}

func (r *Report) addErrors(errs ...error) {
	for _, e := range errs {
		r.Errors++
		if len(r.ErrorSamples) < maxErrorSamples {
			r.ErrorSamples = append(r.ErrorSamples, e.Error())
		}
	}
}

// WriteJSON writes the report to w as indented JSON and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// human formats a rate with k or M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " k"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

func us(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// WriteTable writes the summary table to w: a line on the run, a row per
// message size (and one for all of them), the errors and a sample of their
// messages.
func (r *Report) WriteTable(w io.Writer) error {
	var out bytes.Buffer
	name := r.Label
	if name == "" {
		name = r.Addr
	}
	switch r.Mode {
	case "echo", "reactor":
		load := "closed loop"
		if r.Rate > 0 {
			load = fmt.Sprintf("rate %s msgs/s", human(r.Rate))
		}
		unit, count := "req/s", "requests"
		if r.Mode == "reactor" {
			unit, count = "msgs/s", "messages"
			load += fmt.Sprintf(", %d in flight per connection", r.InFlight)
			if r.Check {
				load += ", digests checked"
			}
		}
		fmt.Fprintf(&out, "loadgen %s %s (%s): %d/%d connections, %s, %.1fs measured after %.1fs warmup\n",
			r.Mode, name, r.Addr, r.Open, r.Conns, load, r.DurationS, r.WarmupS)
		tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "size B\tconns\t%s\t%s\tMB/s\tp50 µs\tp99 µs\tp999 µs\tmax µs\t\n", count, unit)
		row := func(size string, conns int, req uint64, rps, mbps float64, l Latency) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.2f\t%s\t%s\t%s\t%s\t\n",
				size, conns, req, human(rps), mbps, us(l.P50), us(l.P99), us(l.P999), us(l.Max))
		}
		for _, s := range r.PerSize {
			row(strconv.Itoa(s.Size), s.Conns, s.Requests, s.ReqPerS, s.MBPerS, s.Latency)
		}
		if len(r.PerSize) > 1 && r.Latency != nil {
			row("all", r.Open, r.Requests, r.ReqPerS, r.MBPerS, *r.Latency)
		}
		tw.Flush()
		if r.Mode == "reactor" {
			fmt.Fprintf(&out, "status-1 replies: %d  wrong digests: %d  failed connections: %d\n",
				r.ReplyErrors, r.WrongDigests, r.FailedConns)
		}
	case "idle":
		fmt.Fprintf(&out, "loadgen idle %s (%s): %d/%d connections open in %.2fs, held %.1fs, %d still echoing\n",
			name, r.Addr, r.Open, r.Conns, r.ConnectS, r.HoldS, r.StillOpen)
		if r.PID > 0 {
			fmt.Fprintf(&out, "server pid %d VmRSS %d KiB -> %d KiB: %.0f bytes per connection\n",
				r.PID, r.RSSBeforeKiB, r.RSSAfterKiB, r.RSSBytesPerConn)
		}
	}
	fmt.Fprintf(&out, "errors: %d", r.Errors)
	if r.Interrupted {
		fmt.Fprint(&out, " (interrupted)")
	}
	fmt.Fprintln(&out)
	for _, e := range r.ErrorSamples {
		fmt.Fprintln(&out, "  "+strings.ReplaceAll(e, "\n", " "))
	}
	_, err := w.Write(out.Bytes())
	return err
}
