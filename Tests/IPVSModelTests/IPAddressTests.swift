import Testing
@testable import IPVSModel

@Suite struct IPAddressTests {
    @Test func ipv4FromHexValueAndText() {
        let a = IPAddress(ipv4: 0x0A00_0001)
        #expect(a.description == "10.0.0.1")
        #expect(a.isIPv4)
        #expect(a.family == .ipv4)
        #expect(IPAddress("10.0.0.1") == a)
        #expect(a.endpoint(port: 80) == "10.0.0.1:80")
    }

    @Test func ipv4RejectsBadText() {
        for bad in ["10.0.0", "10.0.0.256", "a.b.c.d", "1.2.3.4.5", "", "1..2.3"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv6TextRoundTripsInRFC5952Form() {
        let cases: [(String, String)] = [
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("fe80::", "fe80::"),
            ("::1", "::1"),
            ("::", "::"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ]
        for (input, expected) in cases {
            let a = IPAddress(input)
            #expect(a?.description == expected, "\(input)")
            #expect(a?.isIPv4 == false)
            #expect(IPAddress(expected) == a)
        }
        #expect(IPAddress("2001:db8::1")!.endpoint(port: 443) == "[2001:db8::1]:443")
    }

    @Test func ipv6RejectsBadText() {
        for bad in ["2001:db8::1::2", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func bytesInitialiser() {
        #expect(IPAddress(bytes: [192, 168, 1, 2])?.description == "192.168.1.2")
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        #expect(IPAddress(bytes: v6)?.description == "2001:db8::1")
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func masking() {
        let a = IPAddress("192.168.77.201")!
        #expect(a.masked(ipv4Mask: 0xFFFF_FF00).description == "192.168.77.0")
        #expect(a.masked(prefixLength: 16).description == "192.168.0.0")
        let b = IPAddress("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")!
        #expect(b.masked(prefixLength: 64).description == "2001:db8:aaaa:bbbb::")
        #expect(b.masked(prefixLength: 48).description == "2001:db8:aaaa::")
        #expect(b.masked(prefixLength: 96).description == "2001:db8:aaaa:bbbb:cccc:dddd::")
        #expect(b.masked(prefixLength: 128) == b)
        #expect(PersistenceNetmask.prefix(64).apply(to: b).description == "2001:db8:aaaa:bbbb::")
        #expect(PersistenceNetmask.ipv4(0xFFFF_FF00).apply(to: a).description == "192.168.77.0")
    }

    @Test func orderingPutsIPv4BeforeIPv6() {
        let v4 = IPAddress("10.0.0.2")!, v4b = IPAddress("10.0.0.10")!, v6 = IPAddress("2001:db8::1")!
        #expect(v4 < v4b)
        #expect([v6, v4b, v4].sorted() == [v4, v4b, v6])
    }
}
