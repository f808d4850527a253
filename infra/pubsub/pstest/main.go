// Command pstest serves Google's in-memory Pub/Sub fake (cloud.google.com/go/pubsub/pstest)
// over real gRPC, so tests can drive it with the real Node client (PUBSUB_EMULATOR_HOST).
// No Docker, no gcloud, no Java: Debian's golang-google-cloud-dev ships the sources and this
// builds offline with GO111MODULE=off GOPATH=/usr/share/gocode (packages/testkit does that).
//
// It prints exactly one line, "listening on 127.0.0.1:PORT", once the port accepts
// connections: with -port 0 that line is how the caller learns the port, without racing.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/pstest"
	pb "google.golang.org/genproto/googleapis/pubsub/v1"
	"google.golang.org/grpc"
)

func main() {
	port := flag.Int("port", 8085, "TCP port on 127.0.0.1 (0: a free one)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes, so a crashed parent leaves no orphan")
	flag.Parse()

	// pstest 0.56 has no port option: NewServer listens on a random localhost port of its
	// own (left unused). Its GServer holds the state and implements the Publisher and
	// Subscriber services, so serve that on our own listener, on the port asked for.
	fake := pstest.NewServer()
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("pstest: %v", err)
	}
	srv := grpc.NewServer()
	pb.RegisterPublisherServer(srv, &fake.GServer)
	pb.RegisterSubscriberServer(srv, &fake.GServer)
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Fatalf("pstest: %v", err)
		}
	}()
	// The listener is bound, so connections queue even before Serve runs: ready now.
	fmt.Printf("listening on %s\n", lis.Addr())

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT)
	if *stdinEOF {
		go func() {
			r := bufio.NewReader(os.Stdin)
			for {
				if _, err := r.ReadByte(); err != nil {
					done <- syscall.SIGTERM
					return
				}
			}
		}()
	}
	<-done
	// Stop, not GracefulStop: open StreamingPull streams would never finish on their own.
	srv.Stop()
	fake.Close()
}
