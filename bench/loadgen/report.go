package loadgen

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is a run's outcome as printed and as JSON (children of -procs send
// it to their parent, which merges).
type Report struct {
	Label       string            `json:"label,omitempty"`
	Mode        Mode              `json:"mode"`
	Kind        Kind              `json:"kind"`
	Procs       int               `json:"procs"`
	Requests    uint64            `json:"requests"`
	OK          uint64            `json:"ok"`
	Errors      map[string]uint64 `json:"errors"`
	Handshakes  uint64            `json:"handshakes"`
	Resumed     uint64            `json:"resumed,omitempty"`
	ElapsedSec  float64           `json:"elapsed_s"`
	RPS         float64           `json:"rps"`
	MeanMs      float64           `json:"mean_ms"`
	P50Ms       float64           `json:"p50_ms"`
	P99Ms       float64           `json:"p99_ms"`
	P999Ms      float64           `json:"p999_ms"`
	MaxMs       float64           `json:"max_ms"`
	TargetCPUs  float64           `json:"target_cpu_s,omitempty"`
	CPUPerReqUs float64           `json:"target_cpu_us_per_req,omitempty"`
	Buckets     map[string]uint64 `json:"buckets,omitempty"`
	SumNs       uint64            `json:"sum_ns,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// NewReport summarises a result.
func NewReport(label string, cfg Config, res *Result, withBuckets bool) Report {
	cpu := res.TargetCPU
	rep := Report{
		Label: label, Mode: cfg.Mode, Kind: cfg.Kind, Procs: 1,
		Requests: res.Requests, OK: res.OK, Errors: res.Errors, Handshakes: res.Handshakes, Resumed: res.Resumed,
		ElapsedSec: res.Elapsed.Seconds(),
	}
	rep.fill(res.Latency)
	if cpu > 0 {
		rep.TargetCPUs = cpu.Seconds()
		if res.OK > 0 {
			rep.CPUPerReqUs = float64(cpu.Microseconds()) / float64(res.OK)
		}
	}
	if withBuckets {
		rep.Buckets = map[string]uint64{}
		for i, c := range res.Latency.Sparse() {
			rep.Buckets[strconv.Itoa(i)] = c
		}
		rep.SumNs = res.Latency.Sum()
	}
	return rep
}

func (r *Report) fill(h *Histogram) {
	if r.ElapsedSec > 0 {
		r.RPS = float64(r.OK) / r.ElapsedSec
	}
	r.MeanMs = ms(h.Mean())
	r.P50Ms = ms(h.Quantile(0.50))
	r.P99Ms = ms(h.Quantile(0.99))
	r.P999Ms = ms(h.Quantile(0.999))
	r.MaxMs = ms(h.Max())
}

// Merge combines children's reports (run side by side): counts add up, the
// elapsed time is the longest, latencies merge bucket by bucket.
func Merge(label string, parts []Report) Report {
	out := Report{Label: label, Errors: map[string]uint64{}}
	h := NewHistogram()
	for _, p := range parts {
		out.Mode, out.Kind = p.Mode, p.Kind
		out.Procs += p.Procs
		out.Requests += p.Requests
		out.OK += p.OK
		out.Handshakes += p.Handshakes
		out.Resumed += p.Resumed
		for k, v := range p.Errors {
			out.Errors[k] += v
		}
		if p.ElapsedSec > out.ElapsedSec {
			out.ElapsedSec = p.ElapsedSec
		}
		b := make(map[int]uint64, len(p.Buckets))
		for k, v := range p.Buckets {
			if i, err := strconv.Atoi(k); err == nil {
				b[i] = v
			}
		}
		h.Merge(b, p.SumNs, time.Duration(p.MaxMs*float64(time.Millisecond)))
	}
	out.fill(h)
	return out
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	var errs []string
	for k, v := range r.Errors {
		errs = append(errs, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(errs)
	e := "none"
	if len(errs) > 0 {
		e = strings.Join(errs, " ")
	}
	_, err := fmt.Fprintf(w, "%s mode=%s kind=%s procs=%d\n  requests=%d ok=%d handshakes=%d resumed=%d elapsed=%.2fs\n  rps=%.1f mean=%.2fms p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.2fms\n  errors: %s\n",
		r.Label, r.Mode, r.Kind, r.Procs, r.Requests, r.OK, r.Handshakes, r.Resumed, r.ElapsedSec,
		r.RPS, r.MeanMs, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, e)
	if err == nil && r.TargetCPUs > 0 {
		_, err = fmt.Fprintf(w, "  target cpu=%.2fs (%.1f µs/request)\n", r.TargetCPUs, r.CPUPerReqUs)
	}
	return err
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcCPU returns the user+system CPU time of the processes (all their
// threads) from /proc/PID/stat.
func ProcCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("loadgen: read cpu of %d: %w", pid, err)
		}
		d, err := parseStatCPU(string(b))
		if err != nil {
			return 0, fmt.Errorf("loadgen: pid %d: %w", pid, err)
		}
		total += d
	}
	return total, nil
}

// parseStatCPU reads utime+stime (fields 14 and 15) of a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses: fields are
// counted after its last ')'.
func parseStatCPU(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat line")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14 → f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed utime/stime")
	}
	return time.Duration(u+st) * time.Second / clockTicks, nil
}
