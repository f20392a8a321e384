extension ProcessorSpec {
    /// Decrypts a stored credential into the run's secret vault.
    public static let kmsDecrypt = ProcessorSpec(
        name: "kms_decrypt",
        summary: "Decrypts a stored credential into the run's secret vault, with a time-to-live.",
        description: """
            Opens a credential stored with `sluice secrets put` (AES-GCM under a data key wrapped \
            by the keyring) and puts its value into the run's vault as `secrets.<as>`. Later steps \
            read it as `${{ secrets.<as> }}`, only in fields marked secret. The value expires after \
            `ttl` (else the pipeline's `secrets.ttl`); every decrypt is audited.
            """,
        fields: [
            FieldSpec(
                "credential", .credentialName, .required,
                description: "Name of the stored credential in the run's org.", example: "openai/admin_key"),
            FieldSpec(
                "as", .identifier, .required, role: .definesSecret,
                description: "Vault name: later steps read `${{ secrets.<as> }}`.", example: "openai_key"),
            FieldSpec(
                "ttl", .duration,
                description: "How long the decrypted value lives; defaults to the pipeline's `secrets.ttl`.",
                example: "15m"),
            FieldSpec(
                "expect", .enumeration(["any", "openai", "anthropic", "gcp"]), .defaultValue("any"),
                description: "Format the decrypted value must have; a mismatch fails the step without showing the value."),
        ],
        outputs: [
            OutputSpec("expires_at", "timestamp", "When the secret leaves the vault.")
        ],
        example: """
            - id: decrypt_key
              uses: kms_decrypt
              with: { credential: openai/admin_key, as: openai_key, ttl: 15m }
            """,
        capabilities: [.credentials]
    )
}
