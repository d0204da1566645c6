package pay.merchant;

/** A unified social credit code's check character (GB 32100-2015), for registering test shops. */
final class CreditCode {
    private static final String CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    private static final int[] WEIGHTS = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

    private CreditCode() {}

    /** The 17 characters {@code first17} and their check character. */
    static String withCheckDigit(String first17) {
        int sum = 0;
        for (int i = 0; i < 17; i++) {
            sum += CHARS.indexOf(first17.charAt(i)) * WEIGHTS[i];
        }
        return first17 + CHARS.charAt((31 - sum % 31) % 31);
    }
}
