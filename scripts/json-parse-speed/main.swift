// The driver of scripts/json-parse-speed.sh: prints MB/s of JSONValue(parsing:) on generated input.
import Foundation

func makeArray(bytes target: Int) -> String {
    var parts: [String] = []
    var size = 2
    var i = 0
    while size < target {
        let item = #"{"id":\#(i),"name":"customer \#(i) \u00e9","amount":\#(i).50,"tags":["a","b\n"],"ok":true,"ratio":1.5e-3,"note":null}"#
        parts.append(item); size += item.utf8.count + 1; i += 1
    }
    return "[" + parts.joined(separator: ",") + "]"
}
func makeContext(bytes target: Int) -> String {
    var fields: [String] = []
    var size = 2; var i = 0
    while size < target {
        let f = #""field_\#(i)":{"order_id":\#(1000 + i),"email":"a\#(i)@example.com","lines":[{"sku":"SKU-\#(i)","qty":2,"price":19.99}],"express":false}"#
        fields.append(f); size += f.utf8.count + 1; i += 1
    }
    return "{" + fields.joined(separator: ",") + "}"
}

func measure(_ label: String, _ text: String, iterations: Int, _ body: (String) throws -> JSONValue) rethrows {
    _ = try body(text)
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<iterations { _ = try body(text) }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let mb = Double(text.utf8.count * iterations) / 1_000_000
    print(String(format: "%@: %d bytes x %d: %.1f MB/s", label, text.utf8.count, iterations, mb / seconds))
}

let big = makeArray(bytes: 1 << 20)
let context = makeContext(bytes: 10_000)
try measure("1 MiB array of objects", big, iterations: 20) { try JSONValue(parsing: $0) }
try measure("10 KB context", context, iterations: 2000) { try JSONValue(parsing: $0) }
let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
let clock = ContinuousClock(); let t = clock.now
_ = try? JSONValue(parsing: deep)
print("500-deep: \(clock.now - t)")
