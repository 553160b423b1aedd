package mqtt_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
)

// BenchmarkBrokerQoS1 publishes telemetry at QoS 1 through the embedded
// broker into a durable file log, one point per message, from many
// connections with many messages in flight each; a message counts once its
// PUBACK (sent after the point is durable) has arrived. client=raw is a
// minimal pipelining MQTT 3.1.1 publisher (cheap, so the broker is what is
// measured); client=paho is the paho client.
func BenchmarkBrokerQoS1(b *testing.B) {
	for _, layout := range ingest.Layouts {
		for _, client := range []string{"raw", "paho"} {
			conns := 64
			if client == "paho" {
				conns = 16
			}
			b.Run(fmt.Sprintf("layout=%s/client=%s/conns=%d", layout, client, conns), func(b *testing.B) {
				benchBroker(b, layout, client, conns)
			})
		}
	}
}

func benchBroker(b *testing.B, layout ingest.Layout, client string, conns int) {
	e := newEnv(b, true, ingest.Options{Layout: layout})
	keys := make([]string, conns)
	for i := range conns {
		keys[i] = e.register(b, fmt.Sprintf("d%d", i), devices.PutRequest{ModelID: "dtmi:test:Sensor;1"})
	}
	const window = 512
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), bench.CPUTime()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprintf("d%d", i)
			var err error
			if client == "raw" {
				err = rawPublish(e.brk.Addr(), dev, keys[i], n, window)
			} else {
				err = pahoPublish(b, e.brk.Addr(), dev, keys[i], n, window)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if got := e.gw.Stats().Points; got != uint64(b.N) {
		b.Fatalf("%d points appended, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// CPU per message, load generator included: the figure that holds
	// when other processes share the cores.
	b.ReportMetric(float64((bench.CPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
}

// rawPublish connects as dev and publishes n QoS 1 messages keeping up to
// window unacknowledged.
func rawPublish(addr, dev, key string, n, window int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var vh []byte
	vh = append(vh, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60)
	for _, s := range []string{dev, dev, key} {
		vh = binary.BigEndian.AppendUint16(vh, uint16(len(s)))
		vh = append(vh, s...)
	}
	pkt := append([]byte{0x10}, varint(nil, len(vh))...)
	if _, err := c.Write(append(pkt, vh...)); err != nil {
		return err
	}
	r := bufio.NewReaderSize(c, 64<<10)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		return fmt.Errorf("CONNACK % x", ack)
	}
	topic := mqtt.TelemetryTopic(dev)
	sem := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(r, ack[:]); err != nil {
				done <- fmt.Errorf("read PUBACK %d of %d: %w", i, n, err)
				return
			}
			if ack[0] != 0x40 {
				done <- fmt.Errorf("got packet % x, want PUBACK", ack)
				return
			}
			<-sem
		}
		done <- nil
	}()
	w := bufio.NewWriterSize(c, 32<<10)
	var buf []byte
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		default:
			if err := w.Flush(); err != nil {
				return err
			}
			sem <- struct{}{}
		}
		payload := fmt.Appendf(nil, `{"temperature":%d.5}`, i%1000)
		id := uint16(i%65535) + 1
		rem := 2 + len(topic) + 2 + len(payload)
		buf = append(buf[:0], 0x32)
		buf = varint(buf, rem)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(topic)))
		buf = append(buf, topic...)
		buf = binary.BigEndian.AppendUint16(buf, id)
		buf = append(buf, payload...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return <-done
}

func varint(dst []byte, n int) []byte {
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

func pahoPublish(b *testing.B, addr, dev, key string, n, window int) error {
	c, err := connect(b, addr, dev, key)
	if err != nil {
		return err
	}
	topic := mqtt.TelemetryTopic(dev)
	toks := make(chan paho.Token, window)
	errc := make(chan error, 1)
	go func() {
		for tok := range toks {
			if tok.Wait(); tok.Error() != nil {
				errc <- tok.Error()
				for range toks {
				}
				return
			}
		}
		errc <- nil
	}()
	for i := 0; i < n; i++ {
		toks <- c.Publish(topic, 1, false, fmt.Appendf(nil, `{"temperature":%d.5}`, i%1000))
	}
	close(toks)
	return <-errc
}
