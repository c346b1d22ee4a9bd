// A proxyless gRPC server behind weftd, as Istio runs one: grpc-go's xds.NewGRPCServer with xDS
// credentials, configured entirely by the listener weftd serves for its address
// (xds.istio.io/grpc/lds/inbound/<ip>:<port>: mTLS or plaintext, RBAC). It answers
// grpc.testing.TestService: UnaryCall says who served it and which peer identity the TLS
// handshake proved (and fails the first attempt of a request with a payload, to show retries);
// EmptyCall answers empty. It prints JSON lines: its address once listening,
// every serving-mode change.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
)

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// peerIdentity is the client's certificate URI SAN when the connection is mTLS, else "plaintext".
func peerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "plaintext"
	}
	if len(tlsInfo.State.PeerCertificates) == 0 {
		return "tls-without-client-certificate"
	}
	for _, u := range tlsInfo.State.PeerCertificates[0].URIs {
		return u.String()
	}
	return "tls-without-uri-san"
}

type testServer struct {
	testgrpc.UnimplementedTestServiceServer
	id   string
	mu   sync.Mutex
	seen map[string]int
}

// UnaryCall fails the first attempt of a request that carries a payload (the client's -flaky):
// only a retry of the same request succeeds, so a client sees success only if its route retries.
func (s *testServer) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if key := string(req.GetPayload().GetBody()); key != "" {
		s.mu.Lock()
		s.seen[key]++
		attempt := s.seen[key]
		s.mu.Unlock()
		if attempt == 1 {
			return nil, status.Errorf(codes.Unavailable, "first attempt of %s fails", key)
		}
	}
	return &testgrpc.SimpleResponse{ServerId: s.id, Hostname: peerIdentity(ctx)}, nil
}

func (s *testServer) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (ip:port)")
	id := flag.String("id", "grpc-go-server", "name this server answers with")
	flag.Parse()

	// xDS decides: TLS from the bootstrap's certificate providers, or the fallback (plaintext).
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	server, err := xds.NewGRPCServer(grpc.Creds(creds), xds.ServingModeCallback(func(a net.Addr, args xds.ServingModeChangeArgs) {
		ev := map[string]any{"event": "serving-mode", "addr": a.String(), "mode": args.Mode.String()}
		if args.Err != nil {
			ev["error"] = args.Err.Error()
		}
		emit(ev)
	}))
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	testgrpc.RegisterTestServiceServer(server, &testServer{id: *id, seen: map[string]int{}})
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
	emit(map[string]any{"event": "listening", "addr": lis.Addr().String()})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		server.Stop()
	}()
	if err := server.Serve(lis); err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		os.Exit(1)
	}
}
