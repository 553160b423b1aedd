// Package stdgraph generates the standard benchmark graph every twinlog
// figure is measured on, so that numbers are comparable across components and
// with peers: B buildings × F floors × R rooms × S sensors (1,000 × 10 × 20 ×
// 4 = 1,011,000 twins at full size), related by contains (building→floor,
// floor→room), hasSensor (room→sensor), isLocatedIn (sensor→room) and
// adjacentTo (floor→floor below, room→previous room): 2,009,000 relationships
// at full size. Generation is deterministic for a seed.
package stdgraph

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Model ids of the standard graph.
const (
	BuildingModel = "dtmi:twinlog:bench:Building;1"
	FloorModel    = "dtmi:twinlog:bench:Floor;1"
	RoomModel     = "dtmi:twinlog:bench:Room;1"
	SensorModel   = "dtmi:twinlog:bench:Sensor;1"
)

// Config sizes the graph. The zero value is the full standard graph.
type Config struct {
	Buildings, Floors, Rooms, Sensors int // defaults 1000, 10, 20, 4
	Seed                              uint64
}

func (c Config) withDefaults() Config {
	if c.Buildings == 0 {
		c.Buildings = 1000
	}
	if c.Floors == 0 {
		c.Floors = 10
	}
	if c.Rooms == 0 {
		c.Rooms = 20
	}
	if c.Sensors == 0 {
		c.Sensors = 4
	}
	return c
}

// Twins returns how many twins the graph has.
func (c Config) Twins() int {
	c = c.withDefaults()
	return c.Buildings * (1 + c.Floors*(1+c.Rooms*(1+c.Sensors)))
}

// Relationships returns how many relationships the graph has.
func (c Config) Relationships() int {
	c = c.withDefaults()
	b, f, r, s := c.Buildings, c.Floors, c.Rooms, c.Sensors
	contains := b*f + b*f*r
	sensors := 2 * b * f * r * s
	adjacent := b*(f-1) + b*f*(r-1)
	return contains + sensors + adjacent
}

// Twin is one generated twin: its id, model and properties.
type Twin struct {
	ID         string
	Model      string
	Properties map[string]any
}

// Relationship is one generated relationship.
type Relationship struct {
	ID, Source, Name, Target string
}

// Generate calls twin for every twin, parents before children, and rel for
// every relationship after both its ends were emitted. Returning an error
// stops generation.
func Generate(cfg Config, twin func(Twin) error, rel func(Relationship) error) error {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7477696e6c6f67))
	kinds := []string{"temperature", "humidity", "co2", "noise"}
	for b := 0; b < cfg.Buildings; b++ {
		bid := fmt.Sprintf("building-%d", b)
		if err := twin(Twin{ID: bid, Model: BuildingModel, Properties: map[string]any{
			"name": fmt.Sprintf("Building %d", b), "address": fmt.Sprintf("%d Main Street", b+1)}}); err != nil {
			return err
		}
		for f := 0; f < cfg.Floors; f++ {
			fid := fmt.Sprintf("%s-floor-%d", bid, f)
			if err := twin(Twin{ID: fid, Model: FloorModel, Properties: map[string]any{
				"name": fmt.Sprintf("Floor %d", f), "level": f}}); err != nil {
				return err
			}
			if err := rel(Relationship{ID: "contains-" + fid, Source: bid, Name: "contains", Target: fid}); err != nil {
				return err
			}
			if f > 0 {
				below := fmt.Sprintf("%s-floor-%d", bid, f-1)
				if err := rel(Relationship{ID: "adjacent-" + below, Source: fid, Name: "adjacentTo", Target: below}); err != nil {
					return err
				}
			}
			for r := 0; r < cfg.Rooms; r++ {
				rid := fmt.Sprintf("%s-room-%d", fid, r)
				if err := twin(Twin{ID: rid, Model: RoomModel, Properties: RoomProperties(rng, r)}); err != nil {
					return err
				}
				if err := rel(Relationship{ID: "contains-" + rid, Source: fid, Name: "contains", Target: rid}); err != nil {
					return err
				}
				if r > 0 {
					prev := fmt.Sprintf("%s-room-%d", fid, r-1)
					if err := rel(Relationship{ID: "adjacent-" + prev, Source: rid, Name: "adjacentTo", Target: prev}); err != nil {
						return err
					}
				}
				for s := 0; s < cfg.Sensors; s++ {
					sid := fmt.Sprintf("%s-sensor-%d", rid, s)
					kind := kinds[s%len(kinds)]
					if err := twin(Twin{ID: sid, Model: SensorModel, Properties: map[string]any{
						"kind": kind, "value": round1(rng.Float64() * 100)}}); err != nil {
						return err
					}
					if err := rel(Relationship{ID: "sensor-" + sid, Source: rid, Name: "hasSensor", Target: sid}); err != nil {
						return err
					}
					if err := rel(Relationship{ID: "in-" + rid, Source: sid, Name: "isLocatedIn", Target: rid}); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// RoomProperties returns a room's ten properties.
func RoomProperties(rng *rand.Rand, n int) map[string]any {
	return map[string]any{
		"name":        fmt.Sprintf("Room %d", n),
		"area":        round1(10 + rng.Float64()*90),
		"capacity":    2 + rng.IntN(30),
		"temperature": round1(18 + rng.Float64()*8),
		"humidity":    round1(30 + rng.Float64()*30),
		"co2":         round1(400 + rng.Float64()*800),
		"noise":       round1(30 + rng.Float64()*40),
		"occupancy":   rng.IntN(20),
		"comfort":     round1(rng.Float64() * 100),
		"booked":      rng.IntN(2) == 1,
	}
}

func round1(v float64) float64 { return float64(int64(v*10)) / 10 }

// Models returns the DTDL v3 interfaces of the standard graph.
func Models() []json.RawMessage {
	docs := []string{
		`{"@context":"dtmi:dtdl:context;3","@id":"` + BuildingModel + `","@type":"Interface","displayName":"Building",
		 "contents":[
		  {"@type":"Property","name":"name","schema":"string","writable":true},
		  {"@type":"Property","name":"address","schema":"string","writable":true},
		  {"@type":"Relationship","name":"contains","target":"` + FloorModel + `"}]}`,
		`{"@context":"dtmi:dtdl:context;3","@id":"` + FloorModel + `","@type":"Interface","displayName":"Floor",
		 "contents":[
		  {"@type":"Property","name":"name","schema":"string","writable":true},
		  {"@type":"Property","name":"level","schema":"integer","writable":true},
		  {"@type":"Property","name":"comfort","schema":"double","writable":true},
		  {"@type":"Relationship","name":"contains","target":"` + RoomModel + `"},
		  {"@type":"Relationship","name":"adjacentTo","target":"` + FloorModel + `"}]}`,
		`{"@context":"dtmi:dtdl:context;3","@id":"` + RoomModel + `","@type":"Interface","displayName":"Room",
		 "contents":[
		  {"@type":"Property","name":"name","schema":"string","writable":true},
		  {"@type":"Property","name":"area","schema":"double","writable":true},
		  {"@type":"Property","name":"capacity","schema":"integer","writable":true},
		  {"@type":"Property","name":"temperature","schema":"double","writable":true},
		  {"@type":"Property","name":"humidity","schema":"double","writable":true},
		  {"@type":"Property","name":"co2","schema":"double","writable":true},
		  {"@type":"Property","name":"noise","schema":"double","writable":true},
		  {"@type":"Property","name":"occupancy","schema":"integer","writable":true},
		  {"@type":"Property","name":"comfort","schema":"double","writable":true},
		  {"@type":"Property","name":"booked","schema":"boolean","writable":true},
		  {"@type":"Telemetry","name":"temperatureReading","schema":"double"},
		  {"@type":"Relationship","name":"hasSensor","target":"` + SensorModel + `"},
		  {"@type":"Relationship","name":"adjacentTo","target":"` + RoomModel + `"}]}`,
		`{"@context":"dtmi:dtdl:context;3","@id":"` + SensorModel + `","@type":"Interface","displayName":"Sensor",
		 "contents":[
		  {"@type":"Property","name":"kind","schema":"string","writable":true},
		  {"@type":"Property","name":"value","schema":"double","writable":true},
		  {"@type":"Telemetry","name":"reading","schema":"double"},
		  {"@type":"Relationship","name":"isLocatedIn","target":"` + RoomModel + `"}]}`,
	}
	out := make([]json.RawMessage, len(docs))
	for i, d := range docs {
		out[i] = json.RawMessage(d)
	}
	return out
}
