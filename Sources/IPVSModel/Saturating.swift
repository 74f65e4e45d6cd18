extension Double {
    /// This value as an Int, saturating: NaN is 0, anything beyond Int's range its nearest
    /// end. For figures derived from outside data (a rate, seconds between two recorded
    /// times, a share) on their way into text: converting one must never trap.
    public var saturatedInt: Int {
        guard !isNaN else { return 0 }
        if self >= 9.2e18 { return Int.max }
        if self <= -9.2e18 { return Int.min }
        return Int(self)
    }
}
