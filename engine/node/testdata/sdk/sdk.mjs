// Drives a twinlog node through the official Azure Digital Twins SDK, over
// HTTPS with a bearer token. Environment: TWINLOG_URL, TWINLOG_TOKEN, and
// NODE_EXTRA_CA_CERTS naming the node's certificate. Exits non-zero on the
// first failed expectation.
import { DigitalTwinsClient } from "@azure/digital-twins-core";
import assert from "node:assert/strict";

const url = process.env.TWINLOG_URL;
const token = process.env.TWINLOG_TOKEN;
const credential = { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) };
const client = new DigitalTwinsClient(url, credential);

const step = (name) => console.log(`ok - ${name}`);

const floor = "dtmi:sdktest:Floor;1";
const room = "dtmi:sdktest:Room;1";
const thermostat = "dtmi:sdktest:Thermostat;1";
const models = [
  {
    "@id": thermostat, "@type": "Interface", "@context": "dtmi:dtdl:context;2", displayName: "Thermostat",
    contents: [{ "@type": "Property", name: "setPoint", schema: "double", writable: true }],
  },
  {
    "@id": room, "@type": "Interface", "@context": "dtmi:dtdl:context;2", displayName: "Room",
    contents: [
      { "@type": "Property", name: "temperature", schema: "double", writable: true },
      { "@type": "Property", name: "name", schema: "string", writable: true },
      { "@type": "Telemetry", name: "reading", schema: "double" },
      { "@type": "Component", name: "thermostat", schema: thermostat },
    ],
  },
  {
    "@id": floor, "@type": "Interface", "@context": "dtmi:dtdl:context;2", displayName: "Floor",
    contents: [
      { "@type": "Property", name: "level", schema: "integer", writable: true },
      { "@type": "Relationship", name: "contains", target: room,
        properties: [{ "@type": "Property", name: "since", schema: "string", writable: true }] },
    ],
  },
];

const created = await client.createModels(models);
assert.equal(created.length, 3);
assert.ok(created.every((m) => m.uploadTime));
step("createModels");

const got = await client.getModel(room, true);
assert.equal(got.id, room);
assert.equal(got.model["@id"], room);
step("getModel with definition");

let listed = [];
for await (const m of client.listModels([room], false, { resultsPerPage: 1 })) listed.push(m.id);
assert.ok(listed.includes(room) && listed.includes(thermostat), `listModels(dependenciesFor) = ${listed}`);
step("listModels with dependencies and paging");

const roomTwin = {
  $metadata: { $model: room },
  temperature: 21.5, name: "Room 1",
  thermostat: { $metadata: {}, setPoint: 20 },
};
const put = await client.upsertDigitalTwin("room-1", JSON.stringify(roomTwin));
assert.equal(put.body.$dtId, "room-1");
assert.ok(put.etag, "upsert returns an ETag");
step("upsertDigitalTwin");

await assert.rejects(
  client.upsertDigitalTwin("room-1", JSON.stringify(roomTwin), { ifNoneMatch: "*" }),
  (e) => e.statusCode === 412,
);
step("upsertDigitalTwin If-None-Match: * on an existing twin is 412");

const twin = await client.getDigitalTwin("room-1");
assert.equal(twin.body.temperature, 21.5);
assert.equal(twin.body.$metadata.$model, room);
step("getDigitalTwin");

await client.updateDigitalTwin("room-1", [{ op: "replace", path: "/temperature", value: 23 }], { ifMatch: twin.etag });
const after = await client.getDigitalTwin("room-1");
assert.equal(after.body.temperature, 23);
assert.notEqual(after.etag, twin.etag);
step("updateDigitalTwin with If-Match");

await assert.rejects(
  client.updateDigitalTwin("room-1", [{ op: "replace", path: "/temperature", value: 1 }], { ifMatch: twin.etag }),
  (e) => e.statusCode === 412,
);
step("updateDigitalTwin with a stale If-Match is 412");

const comp = await client.getComponent("room-1", "thermostat");
assert.equal(comp.body.setPoint, 20);
await client.updateComponent("room-1", "thermostat", [{ op: "replace", path: "/setPoint", value: 22 }]);
assert.equal((await client.getComponent("room-1", "thermostat")).body.setPoint, 22);
step("getComponent / updateComponent");

await client.upsertDigitalTwin("floor-1", JSON.stringify({ $metadata: { $model: floor }, level: 1 }));
for (let i = 2; i <= 4; i++) {
  await client.upsertDigitalTwin(`room-${i}`, JSON.stringify({ $metadata: { $model: room }, thermostat: { $metadata: {} } }));
}
for (let i = 1; i <= 4; i++) {
  const rel = { $relationshipId: `r${i}`, $sourceId: "floor-1", $relationshipName: "contains", $targetId: `room-${i}`, since: "2026" };
  const r = await client.upsertRelationship("floor-1", `r${i}`, rel);
  assert.equal(r.body.$targetId, `room-${i}`);
}
step("upsertRelationship");

const rel = await client.getRelationship("floor-1", "r1");
assert.equal(rel.body.since, "2026");
await client.updateRelationship("floor-1", "r1", [{ op: "replace", path: "/since", value: "2027" }], { ifMatch: rel.etag });
assert.equal((await client.getRelationship("floor-1", "r1")).body.since, "2027");
step("getRelationship / updateRelationship");

let out = [];
for await (const r of client.listRelationships("floor-1")) out.push(r.$relationshipId);
assert.deepEqual(out.sort(), ["r1", "r2", "r3", "r4"]);
let pages = 0;
for await (const page of client.listRelationships("floor-1").byPage({ maxPageSize: 3 })) pages++;
assert.ok(pages >= 1);
step("listRelationships");

let inc = [];
for await (const r of client.listIncomingRelationships("room-1")) inc.push(r);
assert.equal(inc.length, 1);
assert.equal(inc[0].sourceId ?? inc[0].$sourceId, "floor-1");
step("listIncomingRelationships");

await client.publishTelemetry("room-1", { reading: 21.7 }, "msg-1");
await client.publishComponentTelemetry("room-1", "thermostat", JSON.stringify({ setPoint: 21 }), "msg-2");
step("publishTelemetry / publishComponentTelemetry");

await assert.rejects(client.getDigitalTwin("no-such-twin"), (e) => e.statusCode === 404 && e.code === "DigitalTwinNotFound");
step("a missing twin is a RestError with code DigitalTwinNotFound");

await assert.rejects(client.deleteDigitalTwin("floor-1"), (e) => e.statusCode === 400 && e.code === "RelationshipsNotDeleted");
step("deleting a twin with relationships is refused");

for (let i = 1; i <= 4; i++) await client.deleteRelationship("floor-1", `r${i}`);
await client.deleteDigitalTwin("floor-1");
await assert.rejects(client.getDigitalTwin("floor-1"), (e) => e.statusCode === 404);
step("deleteRelationship / deleteDigitalTwin");

await client.decomissionModel(floor);
assert.equal((await client.getModel(floor)).decommissioned, true);
await client.deleteModel(floor);
await assert.rejects(client.getModel(floor), (e) => e.statusCode === 404 && e.code === "ModelNotFound");
step("decomissionModel / deleteModel");

console.log("all SDK checks passed");
