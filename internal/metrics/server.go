package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Path is where the Server serves the metrics.
const Path = "/metrics"

// NewRegistry returns a registry of its own (never the global default) with
// a Collector of src and the Go runtime's and the process's metrics.
func NewRegistry(src Sources) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register the metrics collectors: %w", err)
		}
	}
	return reg, nil
}

// Server serves a registry's metrics over HTTP on Path.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *zap.Logger
}

// shutdownTimeout bounds how long Run waits for scrapes in progress when
// it stops.
const shutdownTimeout = 5 * time.Second

// Listen binds addr (ADDRESS:PORT) at once, so that a port in use fails
// the daemon's start rather than a scrape later, and returns the Server
// that Run serves on it.
func Listen(addr string, reg *prometheus.Registry, log *zap.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w; choose a free port, or remove metrics_listen to serve no metrics", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log),
		// A source that fails (the netstat file, say) must not hide
		// the other metrics.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	return &Server{
		ln:  ln,
		log: log,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          zap.NewStdLog(log),
		},
	}, nil
}

// Addr is the address the Server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then waits a little for scrapes in progress
// and returns nil; it returns an error if serving fails before that.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("serving metrics", zap.String("url", "http://"+s.ln.Addr().String()+Path))
	select {
	case err := <-errc:
		return fmt.Errorf("metrics server on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		s.log.Warn("metrics server did not stop cleanly", zap.Error(err))
	}
	return nil
}
