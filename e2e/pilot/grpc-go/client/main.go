// A proxyless gRPC client as Istio runs one: grpc-go dialling `xds:///<target>` with xDS
// credentials (mTLS when the cluster weftd serves says ISTIO_MUTUAL, else plaintext). With
// -direct tls|plaintext it instead dials an address without xDS and without a client
// certificate, to show what a server under STRICT does with such a client. It makes -calls calls (after the first success
// when -until-ok is set) and prints one JSON line per call.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and balancers
)

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// rawCodec sends and receives message bytes as they are: the grpc-js test service speaks JSON.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

func serverIdentity(p *peer.Peer) string {
	tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "plaintext"
	}
	if len(tlsInfo.State.PeerCertificates) > 0 {
		for _, u := range tlsInfo.State.PeerCertificates[0].URIs {
			return u.String()
		}
	}
	return "tls"
}

func main() {
	target := flag.String("target", "", "xds:///name[:port], or an address with -direct")
	direct := flag.String("direct", "", "tls or plaintext: dial the address so, with no client certificate, instead of through xDS")
	method := flag.String("method", "unary", "unary (UnaryCall), empty (EmptyCall), or echo (/weft.e2e.Echo/Version, JSON messages: the grpc-js test server)")
	calls := flag.Int("calls", 1, "calls to make")
	untilOk := flag.Duration("until-ok", 0, "first retry until a call succeeds, for this long (config propagation)")
	flaky := flag.Bool("flaky", false, "unary calls carry a payload unique to the call: the server fails the first attempt of each")
	flag.Parse()

	var creds credentials.TransportCredentials
	switch *direct {
	case "tls":
		// The server's certificate names a SPIFFE ID, not this address; the check under test is the server's.
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec
	case "plaintext":
		creds = insecure.NewCredentials()
	default:
		var err error
		creds, err = xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			emit(map[string]any{"ok": false, "error": err.Error()})
			os.Exit(1)
		}
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(creds))
	if err != nil {
		emit(map[string]any{"ok": false, "error": err.Error()})
		os.Exit(1)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	call := func() map[string]any {
		// Generous: the first call also waits for xDS (LDS, RDS, CDS, EDS) and two handshakes on a loaded machine;
		// refusals still come at once (a failed connection fails a call that does not wait for ready).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var p peer.Peer
		var err error
		out := map[string]any{}
		switch *method {
		case "empty":
			_, err = client.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Peer(&p))
		case "echo":
			var reply []byte
			err = conn.Invoke(ctx, "/weft.e2e.Echo/Version", []byte(`{"from":"grpc-go"}`), &reply, grpc.Peer(&p), grpc.ForceCodecV2(rawCodec{}))
			if err == nil {
				var r struct {
					Version string `json:"version"`
					Peer    string `json:"peer"`
				}
				if err = json.Unmarshal(reply, &r); err == nil {
					out["server"] = r.Version
					out["peerSeenByServer"] = r.Peer
				}
			}
		default:
			var res *testgrpc.SimpleResponse
			req := &testgrpc.SimpleRequest{FillServerId: true}
			if *flaky {
				req.Payload = &testgrpc.Payload{Body: []byte(fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()))}
			}
			res, err = client.UnaryCall(ctx, req, grpc.Peer(&p))
			if err == nil {
				out["server"] = res.GetServerId()
				out["peerSeenByServer"] = res.GetHostname()
			}
		}
		if err != nil {
			st := status.Convert(err)
			return map[string]any{"ok": false, "code": st.Code().String(), "message": st.Message()}
		}
		out["ok"] = true
		out["serverIdentity"] = serverIdentity(&p)
		return out
	}

	if *untilOk > 0 {
		deadline := time.Now().Add(*untilOk)
		for {
			r := call()
			if r["ok"] == true || time.Now().After(deadline) {
				if r["ok"] != true {
					emit(r)
					os.Exit(2)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := 0; i < *calls; i++ {
		emit(call())
	}
}
